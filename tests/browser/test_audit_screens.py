"""An auditor works through the audit screens in a real (headless) browser."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from clinical.models import Case
from clinical.schemas import ReviewInput
from clinical.services import review_record
from tests.browser.support import only_local_requests, screenshot, sign_in
from tests.factories import TEST_ACTOR


def test_auditor_filters_opens_a_timeline_exports_and_checks_the_chain(
    page: Page, live_server: Any, carol: User, alice: User, completed_case: Case
) -> None:
    review_record(
        case=completed_case,
        review=ReviewInput.model_validate(
            {"decision": "reject", "reason_code": "cds-not-applicable", "reason_text": "not ACS"}
        ),
        actor=TEST_ACTOR,
        reviewer=alice,
    )
    sign_in(page, live_server, "carol")

    # Filter the case list to rejected answers; alice's case is there.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audited cases").click()
    page.get_by_label("Review decision").select_option("reject")
    page.get_by_label("Submitting system").select_option("person")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit-table tbody tr")).to_have_count(1)
    # ...and to accepted ones: nothing, said plainly.
    page.get_by_label("Review decision").select_option("accept")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No cases match these filters")).to_be_visible()
    page.get_by_label("Review decision").select_option("reject")
    page.get_by_role("button", name="Filter").click()
    screenshot(page, "audit-cases")

    # Open the case: its timeline names every step, the review included.
    page.locator("table.audit-table tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    timeline = page.locator("#timeline-table")
    for code in ("case.submitted", "run.started", "run.completed", "review.recorded"):
        expect(timeline.get_by_text(code, exact=True)).to_be_visible()
    expect(page.get_by_text("Rejected")).to_be_visible()
    screenshot(page, "audit-case")

    # Export the case's events in both formats.
    page.goto(f"{live_server.url}/audit/events/?case={completed_case.id}")
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    assert "review.recorded" in [row["code"] for row in rows]
    with page.expect_download() as fhir_download:
        page.get_by_role("link", name="FHIR AuditEvent + Provenance (JSON)").click()
    bundle = json.loads(Path(fhir_download.value.path()).read_text())
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert bundle["resourceType"] == "Bundle" and kinds == {"AuditEvent", "Provenance"}

    # The chain is verified on request.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chain status").click()
    page.get_by_role("button", name="Verify the whole chain now").click()
    expect(page.get_by_role("status")).to_contain_text("Intact")
    screenshot(page, "audit-chain")

    # The overview's four charts, kept as the test's screenshot.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit overview").click()
    expect(page.locator("svg.chart")).to_have_count(4)
    screenshot(page, "audit-overview")
    assert only_local_requests(page, live_server) == []

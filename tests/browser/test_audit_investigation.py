"""An auditor answers "who viewed patient X's case, and did anyone override the answer?"
from one screen, reads the case as the clinician saw it, and cannot miss a broken chain;
in headless Chromium at a phone's, a small laptop's and a desktop's width, with axe-core
finding no serious accessibility violation on the auditors' pages."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from playwright.sync_api import Page, expect

from audit.actors import actor_for
from audit.models import AuditEvent
from clinical.models import Case
from clinical.services import case_viewed
from tests import factories
from tests.browser.support import check_widths as _check_widths
from tests.browser.support import only_local_requests, sign_in


def _tamper(event_id: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        # Past the append-only triggers, as the table's owner can (committed: the live server
        # reads it), and the triggers on again in the same transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE audit_auditevent SET details = '{\"forged\": true}' WHERE id = %s", [event_id]
        )
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def test_auditor_investigates_a_patient_reads_the_case_and_sees_a_broken_chain(
    page: Page, live_server: Any, carol: User, alice: User, bob: User, completed_case: Case
) -> None:
    # Modified, then accepted: the latest review alone hides the override. bob opened it.
    factories.reviewed_case(
        completed_case,
        alice,
        decision="modify",
        reason_code="need-more-info",
        reason_text="troponin too early",
        plan=["Repeat troponin in 3 hours"],
    )
    factories.reviewed_case(completed_case, alice, decision="accept")
    case_viewed(case=completed_case, actor=actor_for(bob))
    today = timezone.now().date().isoformat()
    sign_in(page, live_server, "carol")

    # One search: the patient's id and today's dates.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Investigate").click()
    page.get_by_label("Patient / external id").fill("ed-2026-000123")
    page.get_by_label("From").fill(today)
    page.get_by_label("To").fill(today)
    page.get_by_role("button", name="Search").click()
    cases = page.get_by_role("table", name="Cases (1)")
    expect(cases.locator("td.overrides")).to_contain_text("Modified by alice")
    expect(cases.locator("td.viewers")).to_contain_text("bob")
    events = page.get_by_role("table", name="Events, newest first")
    expect(events.get_by_text("case.viewed", exact=True).first).to_be_visible()
    expect(events).to_contain_text("need-more-info")  # a detail, in its own column
    _check_widths(page, "audit-investigate")

    # The case list: key columns first, no overflow at any width.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audited cases").click()
    page.get_by_label("Ever overridden").check()
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.audit-cases tbody tr")).to_have_count(1)
    expect(page.locator("table.audit-cases thead th").first).to_have_text("Case")
    _check_widths(page, "audit-case-list")

    # The case record: the answer as the clinician saw it, and a timeline that filters.
    page.locator("table.audit-cases tbody tr").first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="The model's answer")).to_be_visible()
    expect(page.locator("#differential")).to_contain_text("Acute MI")
    page.get_by_label("Event").select_option("review.recorded")
    page.get_by_role("button", name="Filter the timeline").click()
    expect(page.locator("#timeline-table tbody tr")).to_have_count(2)
    _check_widths(page, "audit-case-record")

    # A broken chain: every auditor page says so until a verification passes.
    forged = AuditEvent.objects.filter(case_id=completed_case.id, code="case.viewed").first()
    assert forged is not None
    _tamper(forged.id)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Chain status").click()
    page.get_by_role("button", name="Verify the whole chain now").click()
    expect(page.get_by_role("status")).to_contain_text(f"Broken at event #{forged.id}")
    expect(page.locator("#chain-alarm")).to_be_visible()
    _check_widths(page, "audit-chain-broken")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit events").click()
    expect(page.locator("#chain-alarm")).to_contain_text("The audit chain is broken")
    expect(page.locator("tr.chain-broken-row")).to_have_count(1)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit overview").click()
    expect(page.locator("#chain-alarm")).to_be_visible()
    expect(page.locator("#override-rate")).to_contain_text("of 1 reviewed cases")
    _check_widths(page, "audit-overview")
    assert only_local_requests(page, live_server) == []

"""Every page a clinician opens, at a phone's, a small laptop's and a desktop's width: nothing
wider than the window, a screenshot kept (tests/artifacts/clinician-*-{width}.png), and
axe-core finding no serious or critical accessibility violation (issue 18: the auditor's
pages have the same check in test_audit_investigation.py)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from clinical.models import Case
from tests import factories
from tests.browser.support import check_widths, only_local_requests, sign_in


def test_every_clinician_page_fits_each_width_and_has_no_serious_accessibility_violation(
    page: Page, live_server: Any, alice: User, completed_case: Case
) -> None:
    factories.reviewed_case(completed_case, alice, decision="accept")
    sign_in(page, live_server, "alice")
    pages = {
        "home": "/",
        "my-cases": "/cases/",
        "new-case": "/cases/new/",
        "case-page": f"/cases/{completed_case.id}/",
        "not-found": "/cases/00000000-0000-4000-8000-000000000000/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        expect(page.locator("main")).to_be_visible()
        check_widths(page, f"clinician-{name}")
    assert only_local_requests(page, live_server) == []

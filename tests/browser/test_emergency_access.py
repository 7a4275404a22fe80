"""Break-glass in a real (headless) browser, as people use it (issue 19): a clinician opens
another clinician's case by stating a reason, without JavaScript; an auditor marks the
access reviewed with a note. Each new page is checked at 390, 1024 and 1366 px with axe."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from clinical.models import Case, EmergencyAccess
from clinical.services import emergency_access_grant
from tests.browser.support import check_widths, only_local_requests, sign_in
from tests.factories import TEST_ACTOR

REASON = "Covering the emergency department: patient deteriorating, owner off shift"


def test_a_clinician_breaks_the_glass_on_another_clinicians_case_without_javascript(
    page: Page, page_without_js: Page, live_server: Any, bob: User, completed_case: Case
) -> None:
    # The pages' widths and axe run in a browser with JavaScript (axe is a script); the
    # flow itself, in one without.
    case_url = f"{live_server.url}/cases/{completed_case.id}/"
    sign_in(page, live_server, "bob")
    page.goto(case_url)
    expect(page.get_by_role("heading", name="This case is not yours")).to_be_visible()
    check_widths(page, "emergency-offer")

    nojs = page_without_js
    sign_in(nojs, live_server, "bob")
    response = nojs.goto(case_url)
    assert response is not None and response.status == 403
    # Too short a reason: refused, next to the box.
    nojs.get_by_label("Why you need this case now").fill("urgent")
    nojs.get_by_role("button", name="Open with emergency access").click()
    expect(nojs.locator("#f-reason-error")).to_contain_text("at least 10 characters")
    assert not EmergencyAccess.objects.exists()

    nojs.get_by_label("Why you need this case now").fill(REASON)
    nojs.get_by_role("button", name="Open with emergency access").click()
    banner = nojs.locator("#emergency-access")
    expect(banner).to_contain_text("Emergency access")
    expect(banner).to_contain_text(REASON)
    grant = EmergencyAccess.objects.get()
    expect(banner).to_contain_text(f"until {grant.expires_at:%H:%M} UTC")
    expect(banner).to_contain_text("will be reviewed by compliance")
    expect(nojs.get_by_role("heading", name="Differential diagnosis")).to_be_visible()
    expect(nojs.locator("#review-form")).to_have_count(0)
    assert AuditEvent.objects.filter(code="case.emergency_access", actor_id=bob.pk).count() == 1
    assert only_local_requests(nojs, live_server) == []

    page.goto(case_url)
    expect(page.locator("#emergency-access")).to_be_visible()
    check_widths(page, "emergency-case-page")
    assert only_local_requests(page, live_server) == []


def test_an_auditor_marks_an_emergency_access_reviewed_with_a_note(
    page: Page, live_server: Any, bob: User, carol: User, completed_case: Case
) -> None:
    grant = emergency_access_grant(case=completed_case, person=bob, reason=REASON, actor=TEST_ACTOR)
    sign_in(page, live_server, "carol")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit overview").click()
    expect(page.locator("#emergency-unreviewed")).to_have_text("1")
    page.get_by_role("link", name="emergency access waiting for review").click()
    entry = page.locator(f"#emergency-{grant.pk}")
    expect(entry).to_contain_text(REASON)
    check_widths(page, "audit-emergency-access")

    # Without a note: refused, said beside the form.
    entry.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator(f"#note-{grant.pk}-error")).to_contain_text("at least 10 characters")
    page.get_by_label("Your review note").fill("Checked the rota: bob was covering. Justified.")
    page.locator(f"#emergency-{grant.pk}").get_by_role("button", name="Mark reviewed").click()
    expect(page.get_by_text("No emergency access is waiting for review.")).to_be_visible()
    page.get_by_label("Show").select_option("reviewed")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f"#emergency-{grant.pk}")).to_contain_text("Justified.")
    event = AuditEvent.objects.get(code="case.emergency_access_reviewed")
    assert (event.actor_id, event.role) == (carol.pk, "auditor")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    check_widths(page, "audit-people")
    assert only_local_requests(page, live_server) == []

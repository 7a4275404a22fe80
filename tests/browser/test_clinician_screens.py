"""The clinician's screens in headless Chromium against the live test server, the case run
on the fake model server (no worker runs in unit tests: the test runs the case itself)."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from clinical import lifecycle
from clinical.models import Case, ClinicianReview
from tests.browser.flows import clinician_flow
from tests.browser.support import only_local_requests, screenshot, sign_in
from tests.fakes import FakeModelServer


def run_case_now(case_id: str) -> None:
    lifecycle.case_run(case_id=case_id)


def test_clinician_enters_a_case_watches_it_and_overrides_the_answer(
    page: Page, live_server: Any, alice: User, fake_model: FakeModelServer
) -> None:
    result = clinician_flow(page, live_server.url, run_case_now)
    review = ClinicianReview.objects.get(case_id=result.case_id)
    assert review.decision == "modify" and review.reason_code == "need-more-info"
    assert review.source == "form"
    case = Case.objects.get(id=result.case_id)
    assert case.input["vitals"]["temperature_c"] == 37.1
    assert [m["name"] for m in case.input["medications"]] == ["metformin", "aspirin"]
    assert any(url.endswith("/status.json") for url in page.requests_seen)  # type: ignore[attr-defined]
    assert only_local_requests(page, live_server) == []
    assert result.console_errors == []  # no script errors, no CSP violations


def test_the_same_flow_works_without_javascript(
    page_without_js: Page, live_server: Any, alice: User, fake_model: FakeModelServer
) -> None:
    result = clinician_flow(
        page_without_js, live_server.url, run_case_now, javascript=False, shots="clinician-nojs"
    )
    assert ClinicianReview.objects.filter(case_id=result.case_id, decision="modify").exists()
    assert not any(url.endswith("/status.json") for url in page_without_js.requests_seen)  # type: ignore[attr-defined]
    assert only_local_requests(page_without_js, live_server) == []


def test_pages_carry_a_self_only_content_security_policy(
    page: Page, live_server: Any, alice: User
) -> None:
    response = page.goto(f"{live_server.url}/accounts/login/")
    assert response is not None
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    sign_in(page, live_server, "alice")
    response = page.goto(f"{live_server.url}/cases/new/")
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_enter_in_a_field_submits_and_never_removes_a_row(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cases/new/")
    page.get_by_label("Medication 1: Name").fill("metformin")
    page.get_by_label("Chief complaint").fill("Headache")
    page.get_by_label("Chief complaint").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("The case was not submitted")
    expect(page.get_by_label("Medication 1: Name")).to_have_value("metformin")
    expect(page.get_by_label("Chief complaint")).to_have_value("Headache")


def test_keyboard_reaches_skip_link_navigation_then_the_form_in_order(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cases/new/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-external_id"
    for expected in ("f-priority", "f-setting", "f-patient-age_years", "f-patient-sex"):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == expected


def test_screens_fit_a_desktop_and_a_tablet_without_sideways_scrolling(
    page: Page, live_server: Any, completed_case: Case
) -> None:
    sign_in(page, live_server, "alice")
    for width, height in ((1280, 800), (800, 1100)):
        page.set_viewport_size({"width": width, "height": height})
        for path, name in (
            ("/cases/new/", "form"),
            (f"/cases/{completed_case.id}/", "case"),
            ("/cases/", "list"),
        ):
            page.goto(f"{live_server.url}{path}")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {width}px"
            if width == 800:
                screenshot(page, f"clinician-{name}-tablet")


def test_rows_are_removed_in_place_and_left_out_of_the_case(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cases/new/")
    page.get_by_label("Age (years)").fill("30")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Chief complaint").fill("Wheeze")
    page.get_by_label("Your question").fill("Asthma or something else?")
    page.get_by_label("Medication 1: Name").fill("salbutamol")
    page.get_by_role("button", name="Add medication").click()
    page.get_by_label("Medication 2: Name").fill("written by mistake")
    page.get_by_role("button", name="Remove medication 2").click()
    expect(page.get_by_label("Medication 2: Name")).to_have_count(0)
    expect(page.get_by_role("button", name="Add medication")).to_be_focused()
    page.get_by_role("button", name="Submit case").click()
    page.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}/$"))
    case = Case.objects.get(submitted_by=alice)
    assert case.input["medications"] == [
        {"name": "salbutamol", "dose": "", "route": "", "frequency": "", "codings": []}
    ]
    assert case.input["patient"] == {"age_years": 30, "sex": "female", "pregnant": None}


def test_polling_says_so_when_the_session_has_ended(
    page: Page, live_server: Any, alice: User
) -> None:
    from clinical.schemas import CaseInput
    from clinical.services import case_submit
    from tests.factories import TEST_ACTOR, load_case

    case = case_submit(
        case_input=CaseInput.model_validate(load_case()), actor=TEST_ACTOR, submitted_by=alice
    )
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cases/{case.id}/")
    expect(page.locator("#case-status")).to_contain_text("Waiting for the model")
    page.context.clear_cookies()  # as the idle timeout would
    expect(page.locator("[data-field=poll-error]")).to_contain_text(
        "Your session has ended", timeout=15_000
    )

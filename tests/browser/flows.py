"""The clinician's whole flow as one reusable function: the unit-level browser tests run it
against the fake model, and an end-to-end test can run it against the real local model by
passing a ``finish_case`` that waits for the real worker (or does nothing) and a longer
``answer_timeout_ms``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.support import PASSWORD, screenshot

CASE_URL = re.compile(r"/cases/([0-9a-f-]{36})/")


@dataclass
class FlowResult:
    case_id: str
    console_errors: list[str] = field(default_factory=list)


def sign_in_at(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def fill_case_form(page: Page, *, javascript: bool) -> None:
    """A chest-pain case, with the temperature typed in Fahrenheit (a wrong value)."""
    page.get_by_label("External id").fill("ED-BROWSER-1")
    page.get_by_label("Priority").select_option("urgent")
    page.get_by_label("Setting").select_option("emergency")
    page.get_by_label("Age (years)").fill("64")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Chief complaint").fill("Crushing chest pain for 40 minutes")
    page.get_by_label("History of present illness").fill(
        "Pain radiates to the left arm, with sweating and nausea."
    )
    page.get_by_label("Past medical history").fill("hypertension\ntype 2 diabetes")
    page.get_by_label("Heart rate (beats/min)").fill("110")
    page.get_by_label("Systolic BP (mmHg)").fill("150")
    page.get_by_label("Diastolic BP (mmHg)").fill("90")
    page.get_by_label("Temperature (°C)").fill("98.6")  # Fahrenheit: refused
    page.get_by_label("SpO₂ (%)").fill("94")
    page.get_by_label("Medication 1: Name").fill("metformin")
    page.get_by_label("Medication 1: Dose").fill("500 mg")
    if javascript:
        page.evaluate("window.bedsideNoReload = true")
    page.get_by_role("button", name="Add medication").click()
    page.get_by_label("Medication 2: Name").fill("aspirin")
    if javascript:  # the row came without a page load
        assert page.evaluate("window.bedsideNoReload === true")
    else:  # the fallback re-rendered the form from what was posted
        expect(page.get_by_label("Medication 1: Name")).to_have_value("metformin")
    page.get_by_label("Medication 2: Dose").fill("75 mg")
    page.get_by_label("Allergy 1: Substance").fill("penicillin")
    page.get_by_label("Allergy 1: Reaction").fill("rash")
    page.get_by_label("Lab result 1: Test").fill("Troponin I")
    page.get_by_label("Lab result 1: Value").fill("2.3")
    page.get_by_label("Lab result 1: Unit").fill("ng/mL")
    page.get_by_label("Your question").fill(
        "What is the most likely diagnosis, and what should be done next?"
    )


def wait_for_answer(page: Page, *, javascript: bool, timeout_ms: int) -> None:
    if javascript:  # the page polls its status and reloads itself when the case finishes
        page.locator("#answer").wait_for(timeout=timeout_ms)
        return
    deadline = time.monotonic() + timeout_ms / 1000
    while True:  # without JavaScript a refresh shows the status
        page.reload()
        if page.locator("#answer").count():
            return
        assert page.locator("#failure").count() == 0, page.locator("#failure").inner_text()
        assert time.monotonic() < deadline, "the case did not finish in time"
        page.wait_for_timeout(1000)


def clinician_flow(
    page: Page,
    base_url: str,
    finish_case: Callable[[str], None],
    *,
    javascript: bool = True,
    username: str = "alice",
    answer_timeout_ms: int = 30_000,
    shots: str = "clinician",
) -> FlowResult:
    """Sign in, enter a case with one wrong value, fix it, submit, wait for the answer, read
    the trace, override it with a reason, and see the override in the history."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # A 400 answer to a form with errors (and the favicon's 404) are meant; script
        # errors and Content-Security-Policy refusals are not.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in_at(page, base_url, username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New case").click()
    expect(page.get_by_role("heading", name="New case")).to_be_visible()
    fill_case_form(page, javascript=javascript)
    screenshot(page, f"{shots}-form")

    page.get_by_role("button", name="Submit case").click()
    error = page.locator("#f-vitals-temperature_c-error")
    expect(error).to_contain_text("this looks like °F, which is 37.0 °C")
    expect(page.get_by_role("alert")).to_contain_text("Temperature (°C)")
    if javascript:  # keyboard and screen-reader users start at the list of what to fix
        expect(page.locator("#error-summary")).to_be_focused()
    expect(page.get_by_label("Chief complaint")).to_have_value("Crushing chest pain for 40 minutes")
    expect(page.get_by_label("Medication 2: Name")).to_have_value("aspirin")
    expect(page.get_by_label("Lab result 1: Value")).to_have_value("2.3")
    screenshot(page, f"{shots}-form-error")

    # One click puts the °C value in the field; the rest of the form stays as typed.
    page.get_by_role("button", name="Use 37.0 °C").click()
    expect(page.get_by_label("Temperature (°C)")).to_have_value("37.0")
    expect(page.get_by_label("Medication 2: Name")).to_have_value("aspirin")
    page.get_by_label("Temperature (°C)").fill("37.1")  # then measured again
    page.get_by_role("button", name="Submit case").click()
    page.wait_for_url(CASE_URL)
    match = CASE_URL.search(page.url)
    assert match is not None
    case_id = match.group(1)
    # Queued, or already running when a real worker picked it up at once.
    expect(page.locator("#case-status")).to_contain_text(
        re.compile("Waiting for the model|The model is working")
    )
    expect(page.locator("#case-input")).to_contain_text("aspirin 75 mg")

    finish_case(case_id)
    wait_for_answer(page, javascript=javascript, timeout_ms=answer_timeout_ms)
    expect(page.locator("#case-status")).to_contain_text("Answer ready")
    expect(page.locator("#differential tbody tr").first).to_be_visible()
    expect(page.locator("#confidence")).to_contain_text("Confidence:")
    screenshot(page, f"{shots}-result")

    trace = page.locator("#trace")
    expect(trace.locator("ol.steps, pre.trace").first).to_be_hidden()
    trace.locator("summary").click()
    expect(trace.locator("ol.steps, pre.trace").first).to_be_visible()

    changes = page.locator("#review-changes")
    if javascript:  # the modify rows show only once "Modify" is chosen
        expect(changes).to_be_hidden()
    page.get_by_role("radio", name=re.compile("^Modify")).check()
    expect(changes).to_be_visible()
    page.get_by_label("Reason", exact=True).select_option("need-more-info")
    page.get_by_label("Reason in your words").fill("Awaiting a repeat troponin before deciding.")
    page.locator("#f-differential-0-diagnosis").fill("Unstable angina")
    page.locator("#f-plan-0").fill("Repeat troponin at 3 hours")
    page.get_by_role("button", name="Record review").click()
    page.wait_for_url(re.compile(r"#reviews$"))

    history = page.locator("#reviews")
    latest = history.locator("article.latest")
    expect(latest).to_contain_text(f"Modified by {username}")
    expect(latest).to_contain_text("Latest")
    expect(latest).to_contain_text("need-more-info")
    expect(latest).to_contain_text("Unstable angina")
    screenshot(page, f"{shots}-review")
    return FlowResult(case_id=case_id, console_errors=errors)

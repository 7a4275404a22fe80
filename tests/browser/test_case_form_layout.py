"""The case form as it lays out in a real browser: what CSS decides, which the test client
cannot see."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from tests.browser.support import screenshot, sign_in
from tests.factories import submitted_case


def top_of(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["y"]


def test_an_error_under_one_field_leaves_the_rows_other_fields_in_line(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/cases/new/")
    page.fill("#f-labs-0-name", "Lactate")
    page.fill("#f-labs-0-value", "4.1")  # a number without its unit: an error under Unit
    page.get_by_role("button", name="Submit case").last.click()
    page.wait_for_load_state()
    assert page.locator("#f-labs-0-unit-error").is_visible()
    tops = {
        name: top_of(page, f"#f-labs-0-{name}")
        for name in ("name", "value", "unit", "status", "reference_range", "loinc")
    }
    assert len(set(tops.values())) == 1, tops
    remove = page.locator("#row-labs-0 button[name=remove_row]")
    assert abs(top_of(page, "#row-labs-0 button[name=remove_row]") - tops["name"]) < 8
    assert remove.is_visible()


def test_my_cases_at_phone_width_shows_every_column_without_cutting_any_off(
    browser: Browser, live_server: Any, alice: User
) -> None:
    submitted_case(alice, external_id="ED-2026-000123")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, live_server, "alice")
        page.goto(f"{live_server.url}/cases/")
        row = page.locator(".case-table tbody tr").first
        headings = page.locator(".case-table thead th").all_inner_texts()
        assert "Status" in headings
        for n, heading in enumerate(headings):
            cell = row.locator("td").nth(n)
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box is not None, heading
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (heading, box)
        expect(row.locator("td").nth(headings.index("Status"))).to_contain_text("Queued")
        screenshot(page, "my-cases-390px")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways: {width} px wide"
    finally:
        context.close()

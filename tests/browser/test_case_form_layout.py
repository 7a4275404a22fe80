"""The case form as it lays out in a real browser: what CSS decides, which the test client
cannot see."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page

from tests.browser.support import sign_in


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

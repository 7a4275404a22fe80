"""Signing in through the browser, and the navigation each role gets."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page

from tests.browser.support import only_local_requests, screenshot, sign_in


def test_clinician_signs_in_and_sees_the_decision_support_banner(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice")
    assert page.get_by_text("Signed in as").is_visible()
    assert page.get_by_role("note").inner_text().startswith("Decision support only")
    assert page.get_by_role("navigation", name="Main").is_visible()
    screenshot(page, "home-clinician")
    assert only_local_requests(page, live_server) == []


def test_wrong_password_stays_on_the_sign_in_page(
    page: Page, live_server: Any, alice: User
) -> None:
    sign_in(page, live_server, "alice", password="wrong")
    assert "/accounts/login/" in page.url
    assert page.get_by_text("Please enter a correct username and password").is_visible()

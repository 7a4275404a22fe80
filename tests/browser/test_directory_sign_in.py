"""Signing in through the sign-in page with a hospital directory account (issue 19),
against the real slapd of ``tests/directory_server.py``: the clinician's screens from the
directory group, and the page naming the directory when it does not answer."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from playwright.sync_api import Page

from bedside import roles
from tests.browser.support import only_local_requests, screenshot, sign_in
from tests.directory_server import (
    PASSWORDS,
    DirectoryServer,
    directory_fixture,  # noqa: F401 (fixture)
    directory_server_fixture,  # noqa: F401 (fixture)
    free_port,
)


def test_a_directory_clinician_signs_in_and_sees_the_clinician_screens(
    page: Page, live_server: Any, directory: DirectoryServer
) -> None:
    sign_in(page, live_server, "dr.ward", password=PASSWORDS["dr.ward"])
    assert page.get_by_text("dr.ward (clinician)", exact=True).is_visible()
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="New case").is_visible()
    assert nav.get_by_role("link", name="Audit events").count() == 0
    nav.get_by_role("link", name="New case").click()
    page.wait_for_load_state()
    assert "/cases/new/" in page.url
    screenshot(page, "directory-clinician")
    assert roles.roles_of(User.objects.get(username="dr.ward")) == {roles.CLINICIAN}
    assert only_local_requests(page, live_server) == []


def test_the_sign_in_page_names_a_directory_that_does_not_answer_on_a_phone(
    page: Page, live_server: Any, directory: DirectoryServer, settings: Any
) -> None:
    settings.BEDSIDE_LDAP_URI = f"ldap://127.0.0.1:{free_port()}"
    page.set_viewport_size({"width": 390, "height": 800})
    sign_in(page, live_server, "dr.ward", password=PASSWORDS["dr.ward"])
    assert "/accounts/login/" in page.url
    message = page.get_by_text("The hospital directory (ldap://127.0.0.1:")
    assert message.is_visible()
    assert "break-glass account" in message.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "directory-down-390")

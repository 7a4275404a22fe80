"""Single sign-on in the browser (issue 19): a person signs in through the hospital
provider's own login page (a real oidc-provider process, ``tests/oidc_server.py``) and lands
on the screens of the role their groups give; a group change shows at the next sign-in;
signing out ends the provider's session too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from typing import Any as SettingsWrapper  # pytest-django does not export its type

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from bedside.accounts import sso
from tests.browser.support import check_widths, screenshot
from tests.oidc_server import PASSWORDS, OidcProvider, settings_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def provider(live_server: Any) -> Iterator[OidcProvider]:
    server = OidcProvider(
        redirect_uris=[f"{live_server.url}/oidc/callback/"],
        post_logout_uris=[f"{live_server.url}/accounts/login/"],
    )
    yield server
    server.stop()


@pytest.fixture
def sso_on(provider: OidcProvider, settings: SettingsWrapper) -> Iterator[OidcProvider]:
    for name, value in settings_for(provider.url).items():
        setattr(settings, name, value)
    provider.set_groups("dr.ward", ["ed-physicians"])
    provider.set_groups("aud.smith", ["compliance"])
    sso.discovery_forget()
    yield provider
    sso.discovery_forget()


def sign_in_at_provider(page: Page, live_server: Any, provider: OidcProvider, login: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with Hospital sign-in (test provider)").click()
    expect(page.get_by_role("heading", name="Hospital sign-in")).to_be_visible()
    assert page.url.startswith(provider.url)  # the provider's own page, not Bedside's
    page.get_by_label("Username").fill(login)
    page.get_by_label("Password").fill(PASSWORDS[login])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_a_clinician_signs_in_through_the_provider_and_out_of_both(
    page: Page, live_server: Any, sso_on: OidcProvider
) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    check_widths(page, "sign-in-sso")
    sign_in_at_provider(page, live_server, sso_on, "dr.ward")
    expect(page.get_by_text("dr.ward (clinician)", exact=True)).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New case").click()
    expect(page.get_by_role("heading", name=re.compile("case", re.I)).first).to_be_visible()
    screenshot(page, "sso-clinician-new-case")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign out of the hospital sign-in")).to_be_visible()
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    # Signed out of the provider too: the next sign-in asks for the password again.
    page.get_by_role("link", name="Sign in with Hospital sign-in (test provider)").click()
    expect(page.get_by_label("Password")).to_be_visible()


def test_a_group_removed_at_the_provider_shows_at_the_next_sign_in(
    page: Page, live_server: Any, sso_on: OidcProvider
) -> None:
    sign_in_at_provider(page, live_server, sso_on, "aud.smith")
    expect(page.get_by_text("aud.smith (auditor)", exact=True)).to_be_visible()
    page.goto(f"{live_server.url}/audit/")
    expect(page.get_by_role("heading").first).to_be_visible()
    assert page.url == f"{live_server.url}/audit/"

    sso_on.set_groups("aud.smith", [])
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Yes, sign me out").click()
    sign_in_at_provider(page, live_server, sso_on, "aud.smith")
    expect(page.get_by_text("You have no role in Bedside yet")).to_be_visible()
    screenshot(page, "sso-no-role")
    assert not User.objects.get(username="aud.smith").groups.exists()

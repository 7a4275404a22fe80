"""Error pages are Bedside's own, with a way back (navigation), and the home page offers
people their screens, not the JSON API or the operators' probes; the favicon is ours."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.views.defaults import server_error


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_forbidden_page_explains_and_offers_the_persons_own_screens(alice: User) -> None:
    page = _client(alice).get("/audit/")
    assert page.status_code == 403
    body = page.content.decode()
    assert "You may not open this page" in body and "(clinician)" in body
    assert 'href="/cases/"' in body and 'aria-label="Main"' in body


def test_not_found_page_has_navigation(carol: User) -> None:
    page = _client(carol).get("/no/such/page/")
    assert page.status_code == 404
    body = page.content.decode()
    assert "Nothing here" in body and 'href="/audit/investigate/"' in body


def test_server_error_page_renders_without_a_request_context() -> None:
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert 'href="/"' in body and 'href="/accounts/login/"' in body


def test_home_page_links_screens_not_json_or_readiness(alice: User, carol: User) -> None:
    for user, expected in ((alice, 'href="/cases/new/"'), (carol, 'href="/audit/investigate/"')):
        body = _client(user).get("/").content.decode()
        assert expected in body
        assert "/readyz" not in body and 'href="/api/v1/cases/"' not in body


def test_pages_carry_a_local_favicon(alice: User) -> None:
    body = _client(alice).get("/").content.decode()
    found = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', body)
    assert found and found.group(1).startswith("/static/bedside/favicon.")
    icon = Client().get(found.group(1))
    assert icon.status_code == 200 and b"<svg" in icon.getvalue()

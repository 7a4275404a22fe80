"""The idle timeout (issue 17, finding 14): a person's session ends BEDSIDE_SESSION_IDLE_S
after their last request, and the case page's status polling is not a request of theirs, so
a case page left open does not keep the session alive forever."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.factories import submitted_case


def _signed_in(user: User) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


def _expires(session_key: str) -> dt.datetime:
    return Session.objects.get(session_key=session_key).expire_date


def test_status_polling_does_not_extend_the_session_but_a_page_does(alice: User) -> None:
    case = submitted_case(alice)
    client, key = _signed_in(alice)
    # As if the last real request were 29 of the 30 idle minutes ago: one minute left.
    one_minute_left = timezone.now() + dt.timedelta(minutes=1)
    Session.objects.filter(session_key=key).update(expire_date=one_minute_left)

    for _ in range(3):
        polled = client.get(f"/cases/{case.id}/status.json")
        assert polled.status_code == 200
        assert settings.SESSION_COOKIE_NAME not in polled.cookies  # no new cookie expiry
    assert _expires(key) == one_minute_left

    assert client.get(f"/cases/{case.id}/").status_code == 200
    assert _expires(key) > timezone.now() + dt.timedelta(seconds=settings.SESSION_COOKIE_AGE - 60)


def test_polling_after_the_idle_timeout_is_refused(alice: User) -> None:
    case = submitted_case(alice)
    client, key = _signed_in(alice)
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    assert client.get(f"/cases/{case.id}/status.json").status_code == 401
    assert client.get(f"/cases/{case.id}/").status_code == 302  # to the sign-in page

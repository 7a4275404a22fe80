"""Sign-in lockout: five failures for one username in 15 minutes refuse it for 15 minutes,
counted from the audit chain, and a success resets the count."""

from __future__ import annotations

import datetime as dt
from typing import Any
from typing import Any as SettingsWrapper

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside.accounts.sign_in import login_locked_until

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role


def sign_in(client: Client, username: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_idle_session_timeout_is_thirty_minutes(settings: SettingsWrapper) -> None:
    assert settings.SESSION_COOKIE_AGE == 1800
    # Restarted by each request a person makes (tests/clinical/test_session_idle.py).
    sessions = settings.MIDDLEWARE.index("django.contrib.sessions.middleware.SessionMiddleware")
    assert settings.MIDDLEWARE.index("bedside.middleware.IdleTimeoutMiddleware") > sessions


def test_five_failures_lock_the_username_even_with_the_right_password(alice: User) -> None:
    client = Client()
    for _ in range(4):
        response = sign_in(client, "alice", "wrong")
        assert "Please enter a correct username and password" in response.content.decode()
    fifth = sign_in(client, "alice", "wrong").content.decode()
    assert "Too many failed sign-ins for this username" in fifth
    refused = sign_in(client, "Alice", PASSWORD)  # case does not dodge the lock
    assert refused.status_code == 200
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(code="auth.failed", object_id="alice").count() == 5
    assert AuditEvent.objects.filter(code="login.refused", object_id="alice").count() == 1
    assert verify_chain() is None


def test_lock_ends_after_the_lockout_period(alice: User) -> None:
    client = Client()
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    until = login_locked_until(username="alice")
    assert until is not None
    last = AuditEvent.objects.filter(code="auth.failed").order_by("-id").first()
    assert last is not None and until == last.recorded_at + dt.timedelta(seconds=900)
    assert login_locked_until(username="alice", now=until - dt.timedelta(seconds=1)) == until
    assert login_locked_until(username="alice", now=until + dt.timedelta(seconds=1)) is None


def test_a_success_resets_the_count_and_other_usernames_are_untouched(
    alice: User, bob: User, settings: SettingsWrapper
) -> None:
    settings.BEDSIDE_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(2):
        sign_in(client, "alice", "wrong")
    assert sign_in(client, "alice", PASSWORD).status_code == 302
    Client().post("/accounts/logout/")
    for _ in range(2):
        sign_in(Client(), "alice", "wrong")
    assert login_locked_until(username="alice") is None
    for _ in range(3):
        sign_in(Client(), "bob", "wrong")
    assert login_locked_until(username="bob") is not None
    assert login_locked_until(username="alice") is None
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_failures_older_than_the_period_do_not_count(alice: User) -> None:
    for _ in range(5):
        sign_in(Client(), "alice", "wrong")
    later = timezone.now() + dt.timedelta(seconds=901)
    assert login_locked_until(username="alice", now=later) is None

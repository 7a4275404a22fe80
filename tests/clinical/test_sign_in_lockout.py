"""Sign-in lockout: five failures for one username in 15 minutes refuse it for 15 minutes,
counted from the audit chain, and a success resets the count."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import Any as SettingsWrapper

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside import roles
from bedside.accounts.sign_in import login_locked_until
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role
HERE = "127.0.0.1"  # the test client's address


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
    assert AuditEvent.objects.filter(code="login.failed", object_id="alice").count() == 5
    assert AuditEvent.objects.filter(code="login.refused", object_id="alice").count() == 1
    assert verify_chain() is None


def test_lock_ends_after_the_lockout_period(alice: User) -> None:
    client = Client()
    for _ in range(5):
        sign_in(client, "alice", "wrong")
    until = login_locked_until(username="alice", source_address=HERE)
    assert until is not None
    last = AuditEvent.objects.filter(code="login.failed").order_by("-id").first()
    assert last is not None and until == last.recorded_at + dt.timedelta(seconds=900)
    second = dt.timedelta(seconds=1)
    assert login_locked_until(username="alice", source_address=HERE, now=until - second) == until
    assert login_locked_until(username="alice", source_address=HERE, now=until + second) is None


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
    assert login_locked_until(username="alice", source_address=HERE) is None
    for _ in range(3):
        sign_in(Client(), "bob", "wrong")
    assert login_locked_until(username="bob", source_address=HERE) is not None
    assert login_locked_until(username="alice", source_address=HERE) is None
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302


def test_failures_older_than_the_period_do_not_count(alice: User) -> None:
    for _ in range(5):
        sign_in(Client(), "alice", "wrong")
    later = timezone.now() + dt.timedelta(seconds=901)
    assert login_locked_until(username="alice", source_address=HERE, now=later) is None


def admin_sign_in(client: Client, username: str, password: str) -> Any:
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
    )


def test_a_username_locked_at_the_main_sign_in_is_locked_at_the_admin_sign_in(
    db: None,
) -> None:
    """Finding 1 of issue 17: the admin login went round the lockout."""
    User.objects.create_superuser("root", password=PASSWORD)
    for _ in range(5):
        sign_in(Client(), "root", "wrong")
    client = Client()
    for _ in range(10):
        admin_sign_in(client, "root", "wrong")
    refused = admin_sign_in(client, "root", PASSWORD)
    assert refused.status_code == 200
    assert "Too many failed sign-ins for this username" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(code="login.succeeded").count() == 0
    assert AuditEvent.objects.filter(code="login.refused", object_id="root").count() == 11


def test_admin_failures_count_towards_the_same_lock(db: None) -> None:
    User.objects.create_superuser("root", password=PASSWORD)
    for _ in range(5):
        admin_sign_in(Client(), "root", "wrong")
    client = Client()
    refused = sign_in(client, "root", PASSWORD)
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_admin_sign_in_is_recorded_with_the_admin_as_actor(db: None) -> None:
    """Finding 1 (no ``login.succeeded`` from the admin login) and issue 18 (the event
    named "anonymous", role "none", instead of the person who signed in)."""
    root = User.objects.create_superuser("root", password=PASSWORD)
    client = Client()
    response = admin_sign_in(client, "root", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(root.pk)
    (event,) = AuditEvent.objects.filter(code="login.succeeded")
    assert (event.object_id, event.actor_label, event.role, event.actor_id) == (
        "root",
        "root",
        "admin",
        root.pk,
    )
    assert verify_chain() is None


def test_a_clinician_sign_in_is_recorded_with_the_clinician_as_actor(alice: User) -> None:
    assert sign_in(Client(), "alice", PASSWORD).status_code == 302
    (event,) = AuditEvent.objects.filter(code="login.succeeded")
    assert (event.actor_label, event.role, event.actor_id) == ("alice", "clinician", alice.pk)


def replay_lockout(codes: list[str], limit: int) -> None:
    """The events of one username's attempts, in the order written, must be what attempts
    made one after another would give: no failure or success counted once ``limit``
    failures in a row lock the username, and a refusal only while it is locked."""
    in_a_row = 0
    for position, code in enumerate(codes):
        locked = in_a_row >= limit
        assert (code == "login.refused") == locked, (position, codes)
        if code == "login.failed":
            in_a_row += 1
        elif code == "login.succeeded":
            in_a_row = 0


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_concurrent_attempts_is_counted_as_if_they_came_one_by_one() -> None:
    """Finding 4 of issue 17: 20 wrong passwords at once were not all counted and the right
    one in the same burst signed in. 21 threads, each with its own database connection,
    post at the same moment."""
    user_with_role("alice", roles.CLINICIAN)
    passwords = ["wrong"] * 10 + [PASSWORD] + ["wrong"] * 10
    start = threading.Barrier(len(passwords))

    def attempt(password: str) -> int:
        try:
            start.wait()
            return int(sign_in(Client(), "alice", password).status_code)
        finally:
            connection.close()

    with ThreadPoolExecutor(len(passwords)) as pool:
        statuses = list(pool.map(attempt, passwords))
    codes = list(
        AuditEvent.objects.filter(object_id="alice").order_by("id").values_list("code", flat=True)
    )
    assert len(codes) == len(passwords)  # every attempt counted: one event each
    assert codes.count("login.succeeded") == statuses.count(302) <= 1
    replay_lockout(codes, limit=5)
    assert verify_chain() is None

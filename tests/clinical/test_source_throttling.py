"""Throttling by source address before authentication, and a lockout a stranger cannot
impose on a clinician (issue 17, finding 9)."""

from __future__ import annotations

import time
from typing import Any
from typing import Any as SettingsWrapper

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside.accounts.services import IssuedKey

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role
STRANGER = "10.9.9.9"


def inside_one_window() -> None:
    """Failures are counted per calendar minute: start where the test cannot cross into the
    next one (it failed in CI when it did, its failures split over two windows)."""
    second = timezone.now().second
    if second >= 40:
        time.sleep(61 - second)


def sign_in(username: str, password: str, address: str = "10.0.0.1") -> tuple[Client, Any]:
    client = Client(REMOTE_ADDR=address)
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client, response


def test_bad_keys_from_one_address_are_refused_before_authentication_and_audited_once(
    integration_key: IssuedKey, settings: SettingsWrapper
) -> None:
    inside_one_window()
    settings.BEDSIDE_AUTH_FAILURES_PER_MIN = 5
    flood = APIClient(REMOTE_ADDR=STRANGER)
    flood.credentials(HTTP_AUTHORIZATION="Bearer bsk_000000000000_not-a-key")
    statuses = [flood.get("/api/v1/cases/").status_code for _ in range(60)]
    assert statuses == [401] * 5 + [429] * 55
    from_stranger = AuditEvent.objects.filter(source_address=STRANGER)
    assert from_stranger.filter(code="auth.failed").count() == 5
    (throttled,) = from_stranger.filter(code="auth.throttled")
    assert throttled.details["limit_per_min"] == 5
    # Even the right key from that address waits: its credentials are not even checked.
    good = APIClient(REMOTE_ADDR=STRANGER)
    good.credentials(HTTP_AUTHORIZATION=f"Bearer {integration_key.key}")
    assert good.get("/api/v1/cases/").status_code == 429
    # Another address is not held back by the stranger's failures.
    other = APIClient(REMOTE_ADDR="10.0.0.2")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {integration_key.key}")
    assert other.get("/api/v1/cases/").status_code == 200
    assert AuditEvent.objects.filter(source_address=STRANGER).count() == 6
    assert verify_chain() is None


def test_wrong_secrets_for_a_real_key_are_refused_by_address_with_the_keys_own_read(
    integration_key: IssuedKey, settings: SettingsWrapper
) -> None:
    inside_one_window()
    """The address's failures are read in the key's own lookup when its prefix is known
    (issue 20): past the limit that address is refused before the secret is compared."""
    settings.BEDSIDE_AUTH_FAILURES_PER_MIN = 3
    prefix = integration_key.api_key.prefix
    guesser = APIClient(REMOTE_ADDR=STRANGER)
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer bsk_{prefix}_a-wrong-secret")
    statuses = [guesser.post("/api/v1/cases/", {}, format="json").status_code for _ in range(8)]
    assert statuses == [401] * 3 + [429] * 5
    right = APIClient(REMOTE_ADDR=STRANGER)
    right.credentials(HTTP_AUTHORIZATION=f"Bearer {integration_key.key}")
    assert right.post("/api/v1/cases/", {}, format="json").status_code == 429
    from_stranger = AuditEvent.objects.filter(source_address=STRANGER)
    assert from_stranger.filter(code="auth.failed").count() == 3
    assert from_stranger.filter(code="auth.throttled").count() == 1


def test_a_stranger_cannot_lock_a_clinician_out(alice: User) -> None:
    for _ in range(5):
        sign_in("alice", "wrong", STRANGER)
    _, refused = sign_in("alice", PASSWORD, STRANGER)
    assert "Too many failed sign-ins" in refused.content.decode()
    client, response = sign_in("alice", PASSWORD, "10.0.0.1")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_an_address_over_its_failures_is_refused_before_any_password_is_tried(
    alice: User, bob: User, settings: SettingsWrapper
) -> None:
    inside_one_window()
    settings.BEDSIDE_AUTH_FAILURES_PER_MIN = 3
    for username in ("carl", "dora", "erin"):
        sign_in(username, "wrong", STRANGER)
    client, response = sign_in("alice", PASSWORD, STRANGER)
    assert response.status_code == 200
    assert "Too many failed sign-ins from your network address" in response.content.decode()
    assert "_auth_user_id" not in client.session
    for _ in range(10):
        sign_in("bob", "wrong", STRANGER)
    assert AuditEvent.objects.filter(code="login.failed").count() == 3
    assert AuditEvent.objects.filter(code="auth.throttled").count() == 1
    assert sign_in("alice", PASSWORD, "10.0.0.1")[1].status_code == 302


def test_an_administrator_unlocks_a_username_by_command(alice: User) -> None:
    for _ in range(5):
        sign_in("alice", "wrong")
    assert "Too many failed sign-ins" in sign_in("alice", PASSWORD)[1].content.decode()
    call_command("unlock_sign_in", "alice")
    assert sign_in("alice", PASSWORD)[1].status_code == 302
    (event,) = AuditEvent.objects.filter(code="login.unlocked")
    assert (event.object_id, event.actor_label) == ("alice", "manage.py unlock_sign_in")


def test_an_administrator_unlocks_a_username_in_the_admin_site(alice: User) -> None:
    root = User.objects.create_superuser("root", password=PASSWORD)
    for _ in range(5):
        sign_in("alice", "wrong")
    admin = Client()
    admin.force_login(root)
    response = admin.post(
        "/admin/auth/user/",
        {"action": "unlock_sign_in", "_selected_action": [str(alice.pk)]},
    )
    assert response.status_code == 302
    assert sign_in("alice", PASSWORD)[1].status_code == 302
    (event,) = AuditEvent.objects.filter(code="login.unlocked")
    assert (event.object_id, event.actor_label, event.role) == ("alice", "root", "admin")

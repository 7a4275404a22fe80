"""Complete by default: every endpoint and screen, driven as every role, answers with the
expected status and writes exactly the expected audit events (reads, writes, exports,
verifications), and nothing when it refuses; failed sign-ins and privilege changes too."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from bedside import roles
from bedside.accounts.models import ApiKey
from bedside.accounts.services import IssuedKey
from clinical.models import Case
from tests.conftest import client_for
from tests.factories import load_case, user_with_role

ENDPOINTS = {
    "home": ("GET", "/"),
    "submit": ("POST", "/api/v1/cases/"),
    "list": ("GET", "/api/v1/cases/"),
    "detail": ("GET", "/api/v1/cases/{case}/"),
    "reviews": ("GET", "/api/v1/cases/{case}/reviews/"),
    "review": ("POST", "/api/v1/cases/{case}/reviews/"),
    "events-api": ("GET", "/api/v1/audit/events/"),
    "verify-api": ("GET", "/api/v1/audit/verify/"),
    "overview": ("GET", "/audit/"),
    "cases-screen": ("GET", "/audit/cases/"),
    "case-screen": ("GET", "/audit/cases/{case}/"),
    "events-screen": ("GET", "/audit/events/"),
    "csv": ("GET", "/audit/events/export.csv"),
    "fhir": ("GET", "/audit/events/export.fhir.json"),
    "chain": ("GET", "/audit/chain/"),
    "verify-screen": ("POST", "/audit/chain/"),
    "emergency-screen": ("GET", "/audit/emergency-access/"),
    "people-screen": ("GET", "/audit/people/"),
}
SCREENS = {"overview", "cases-screen", "case-screen", "events-screen", "csv", "fhir", "chain"}
SCREENS |= {"verify-screen", "emergency-screen", "people-screen"}
API = {"submit", "list", "detail", "reviews", "review", "events-api", "verify-api"}

AUDITOR_VIEW = {
    "home": (200, []),
    "submit": (403, []),
    "list": (200, ["case.listed"]),
    "detail": (200, ["case.viewed"]),
    "reviews": (200, ["review.viewed"]),
    "review": (403, []),
    "events-api": (200, ["audit.viewed"]),
    "verify-api": (200, ["audit.verified"]),
    "overview": (200, ["audit.viewed"]),
    "cases-screen": (200, ["audit.viewed"]),
    "case-screen": (200, ["case.viewed"]),
    "events-screen": (200, ["audit.viewed"]),
    "csv": (200, ["export.created"]),
    "fhir": (200, ["export.created"]),
    "chain": (200, ["audit.viewed"]),
    "verify-screen": (200, ["audit.verified"]),
    "emergency-screen": (200, ["audit.viewed"]),
    "people-screen": (200, ["audit.viewed"]),
}
EXPECTED: dict[str, dict[str, tuple[int, list[str]]]] = {
    "anonymous": {
        "home": (302, []),
        **dict.fromkeys(API, (401, [])),
        **dict.fromkeys(SCREENS, (302, [])),
    },
    "bad-key": {
        "home": (302, []),
        **dict.fromkeys(API, (401, ["auth.failed"])),
        **dict.fromkeys(SCREENS, (302, [])),
    },
    "clinician": {
        "home": (200, []),
        "submit": (202, ["case.submitted"]),
        "list": (200, ["case.listed"]),
        "detail": (200, ["case.viewed"]),
        "reviews": (200, ["review.viewed"]),
        "review": (201, ["review.recorded"]),
        "events-api": (403, []),
        "verify-api": (403, []),
        **dict.fromkeys(SCREENS, (403, [])),
    },
    "other-clinician": {
        "home": (200, []),
        "submit": (202, ["case.submitted"]),
        "list": (200, ["case.listed"]),
        "detail": (404, []),  # not bob's case: it does not exist for him
        "reviews": (404, []),
        "review": (404, []),
        "events-api": (403, []),
        "verify-api": (403, []),
        **dict.fromkeys(SCREENS, (403, [])),
    },
    "integration": {
        "home": (302, []),  # a key is no browser session
        "submit": (202, ["case.submitted"]),
        "list": (200, ["case.listed"]),
        "detail": (404, []),
        "reviews": (404, []),
        "review": (403, []),
        "events-api": (403, []),
        "verify-api": (403, []),
        **dict.fromkeys(SCREENS, (302, [])),
    },
    "auditor": AUDITOR_VIEW,
    "admin": AUDITOR_VIEW,
}
ROLE_LABEL = {
    "anonymous": "none",
    "bad-key": "none",
    "clinician": "clinician",
    "other-clinician": "clinician",
    "integration": "integration",
    "auditor": "auditor",
    "admin": "admin",
}


def _client(role: str, users: dict[str, User], key: IssuedKey) -> Any:
    if role == "anonymous":
        return APIClient()
    if role == "bad-key":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer bsk_{key.api_key.prefix}_not-the-secret")
        return client
    if role == "integration":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.key}")
        return client
    return client_for(users[role])


def _call(client: Any, name: str, case: Case) -> int:
    method, path = ENDPOINTS[name]
    path = path.format(case=case.id)
    if name == "submit":
        return client.post(path, load_case(), format="json").status_code
    if name == "review":
        return client.post(path, {"decision": "accept"}, format="json").status_code
    response = client.post(path) if method == "POST" else client.get(path)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    return response.status_code


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.mark.parametrize("role", sorted(EXPECTED))
def test_every_endpoint_as_every_role_writes_exactly_the_expected_events(
    role: str,
    completed_case: Case,
    alice: User,
    bob: User,
    carol: User,
    integration_key: IssuedKey,
) -> None:
    users = {
        "clinician": alice,
        "other-clinician": bob,
        "auditor": carol,
        "admin": user_with_role("dora", roles.ADMIN),
    }
    client = _client(role, users, integration_key)
    actual: dict[str, tuple[int, list[str]]] = {}
    wrong_role: list[str] = []
    for name in ENDPOINTS:
        before = _last_id()
        status = _call(client, name, completed_case)
        events = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))
        actual[name] = (status, [e.code for e in events])
        wrong_role += [
            f"{name}: {e.code} as {e.role}" for e in events if e.role != ROLE_LABEL[role]
        ]
    assert actual == EXPECTED[role]
    assert wrong_role == []


def test_failed_sign_in_writes_one_event_naming_the_user_tried(alice: User) -> None:
    before = _last_id()
    response = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    events = list(AuditEvent.objects.filter(id__gt=before))
    assert [(e.code, e.outcome, e.object_id) for e in events] == [
        ("login.failed", "failure", "alice")
    ]
    assert events[0].details == {"method": "local", "reason": "bad credentials"}
    assert "wrong" not in str(events[0].details)  # never the password


def test_revoked_key_is_refused_and_recorded(
    integration_key: IssuedKey, ehr_client: APIClient
) -> None:
    ApiKey.objects.filter(pk=integration_key.api_key.pk).update(revoked_at=timezone.now())
    before = _last_id()
    assert ehr_client.get("/api/v1/cases/").status_code == 401
    event = AuditEvent.objects.get(id__gt=before)
    assert (event.code, event.details["reason"], event.object_id) == (
        "auth.failed",
        "revoked",
        integration_key.api_key.prefix,
    )
    assert integration_key.key not in str(event.details)


def test_every_privilege_change_writes_one_event(db: None) -> None:
    before = _last_id()
    user = User.objects.create_user(username="erin", password="correct horse battery")
    assert AuditEvent.objects.filter(id__gt=before).count() == 0  # a new user holds nothing
    roles.grant_role(user, roles.AUDITOR)
    user.groups.remove(Group.objects.get(name=roles.AUDITOR))
    Group.objects.get_or_create(name=roles.CLINICIAN)[0].user_set.add(user)
    user.groups.clear()
    user.is_superuser = True
    user.save()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])  # not a privilege: no event
    events = AuditEvent.objects.filter(id__gt=before).order_by("id")
    assert [(e.code, e.details["granted"], e.details["revoked"]) for e in events] == [
        ("role.changed", ["auditor"], []),
        ("role.changed", [], ["auditor"]),
        ("role.changed", ["clinician"], []),
        ("role.changed", [], ["clinician"]),
        ("role.changed", ["is_superuser"], []),
    ]
    assert {e.object_id for e in events} == {str(user.pk)}


def test_role_change_through_the_admin_site_names_the_admin(db: None) -> None:
    admin = User.objects.create_superuser("root", password="correct horse battery")
    target = user_with_role("frank", roles.CLINICIAN)
    auditor_group = Group.objects.get_or_create(name=roles.AUDITOR)[0]
    client = Client()
    client.force_login(admin)
    before = _last_id()
    form = {
        "username": "frank",
        "is_active": "on",
        "groups": [str(auditor_group.pk)],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = client.post(f"/admin/auth/user/{target.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    events = list(AuditEvent.objects.filter(id__gt=before, code="role.changed").order_by("id"))
    assert [(e.actor_label, e.role) for e in events] == [("root", "admin")] * len(events)
    changes = [(e.details["granted"], e.details["revoked"]) for e in events]
    assert ([], ["clinician"]) in changes or (["auditor"], ["clinician"]) in changes
    assert any("auditor" in granted for granted, _ in changes)

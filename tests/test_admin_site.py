"""The admin site and the audit trail (issue 17, finding 2).

The admin site shows no patient data (cases without their input or external id; runs,
reviews and audit events not at all), deletes no patient record (and the database refuses
it whoever asks), and every write made through it is an audit event: password resets
(never the secret), role groups renamed or deleted (old and new values), anything else.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, connection, transaction
from django.test import Client

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside import roles
from clinical.models import Case, ClinicianReview
from reasoning.models import ReasoningRun
from tests.factories import PASSWORD, reviewed_case, submitted_case

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a brand new secret 42"


@pytest.fixture
def root(db: None) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


@pytest.fixture
def admin_client(root: User) -> Client:
    client = Client()
    client.force_login(root)
    return client


def _last_id() -> int:
    last = AuditEvent.objects.order_by("-id").first()
    return last.id if last else 0


def test_the_admin_case_pages_show_no_patient_data(admin_client: Client, alice: User) -> None:
    case = submitted_case(alice)
    listing = admin_client.get("/admin/clinical/case/").content.decode()
    page = admin_client.get(f"/admin/clinical/case/{case.id}/change/").content.decode()
    assert str(case.id) in listing
    for text in (listing, page):
        assert "ED-2026-000123" not in text
        assert "Crushing chest pain" not in text
        assert "metformin" not in text
    # Searching by external id would tell an admin which case a patient's id belongs to.
    found = admin_client.get("/admin/clinical/case/", {"q": "ED-2026-000123"})
    assert str(case.id) not in found.content.decode()


def test_runs_reviews_and_audit_events_are_not_in_the_admin() -> None:
    for model in (ReasoningRun, ClinicianReview, AuditEvent):
        assert not admin.site.is_registered(model), model


def test_no_one_can_delete_a_case_through_the_admin(admin_client: Client, alice: User) -> None:
    case = submitted_case(alice)  # queued: nothing else refers to it yet
    assert admin_client.get(f"/admin/clinical/case/{case.id}/delete/").status_code == 403
    admin_client.post(
        "/admin/clinical/case/",
        {"action": "delete_selected", "_selected_action": [str(case.id)], "post": "yes"},
    )
    admin_client.post(f"/admin/clinical/case/{case.id}/delete/", {"post": "yes"})
    assert Case.objects.filter(id=case.id).exists()


def _refused(sql: str, params: list[Any]) -> bool:
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
    except IntegrityError as exc:
        return "refused" in str(exc)
    return False


def test_the_database_refuses_to_delete_a_case_a_run_or_a_review(
    completed_case: Case, bob: User
) -> None:
    reviewed_case(completed_case, bob, decision="accept")
    queued = submitted_case(bob)
    assert _refused("DELETE FROM clinical_case WHERE id = %s", [queued.id])
    assert _refused("DELETE FROM clinical_case WHERE id = %s", [completed_case.id])
    assert _refused("DELETE FROM reasoning_reasoningrun WHERE case_id = %s", [completed_case.id])
    assert _refused("DELETE FROM clinical_clinicianreview WHERE case_id = %s", [completed_case.id])
    assert Case.objects.filter(id__in=[queued.id, completed_case.id]).count() == 2


def test_a_password_reset_in_the_admin_is_audited_without_the_secret(
    admin_client: Client, alice: User
) -> None:
    before = _last_id()
    old_hash = alice.password
    response = admin_client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:2000]
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    (event,) = AuditEvent.objects.filter(id__gt=before, code="password.changed")
    assert (event.actor_label, event.role, event.object_id) == ("root", "admin", str(alice.pk))
    assert event.details["user"] == "alice"
    everything = str(list(AuditEvent.objects.filter(id__gt=before).values()))
    assert NEW_PASSWORD not in everything
    assert old_hash not in everything and alice.password not in everything
    assert verify_chain() is None


def test_renaming_and_deleting_a_role_group_in_the_admin_is_audited(
    admin_client: Client, alice: User
) -> None:
    group = Group.objects.get(name=roles.CLINICIAN)
    before = _last_id()
    renamed = admin_client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "clinicians"})
    assert renamed.status_code == 302, renamed.content[:2000]
    deleted = admin_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not Group.objects.filter(pk=group.pk).exists()
    events = list(AuditEvent.objects.filter(id__gt=before, object_type="group").order_by("id"))
    assert [(e.code, e.actor_label, e.role) for e in events] == [
        ("role.group_renamed", "root", "admin"),
        ("role.group_deleted", "root", "admin"),
    ]
    assert events[0].details == {"old": "clinician", "new": "clinicians", "members": ["alice"]}
    assert events[1].details == {"name": "clinicians", "members": ["alice"]}


def test_every_other_admin_write_is_audited_with_the_fields_changed(
    admin_client: Client, alice: User
) -> None:
    before = _last_id()
    form = {
        "username": "alice",
        "first_name": "Alice",
        "is_active": "on",
        "groups": [str(Group.objects.get(name=roles.CLINICIAN).pk)],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
    }
    response = admin_client.post(f"/admin/auth/user/{alice.pk}/change/", form)
    assert response.status_code == 302, response.content[:2000]
    (event,) = AuditEvent.objects.filter(id__gt=before, code="admin.changed")
    assert (event.actor_label, event.object_type, event.object_id) == (
        "root",
        "auth.user",
        str(alice.pk),
    )
    assert "first_name" in event.details["fields"]

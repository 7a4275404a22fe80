"""A broken chain is unmissable: a banner on every page an auditor opens while the last
verification failed, broken rows flagged in the lists, and checkpoint verification from
the chain page."""

from __future__ import annotations

import json

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from audit.models import Action, AuditEvent
from audit.services import SYSTEM, checkpoint_create, record


@pytest.fixture
def auditor(carol: User) -> Client:
    client = Client()
    client.force_login(carol)
    return client


def _tamper(event: AuditEvent) -> None:
    # Past the append-only triggers, as the table's owner can (not a superuser's setting).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    AuditEvent.objects.filter(id=event.id).update(details={"forged": True})
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")


def test_a_failed_verification_puts_a_banner_on_every_auditor_page_and_flags_rows(
    auditor: Client, alice: User
) -> None:
    events = [
        record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}", details={"i": i})
        for i in range(5)
    ]
    for page in ("/audit/", "/audit/cases/", "/audit/events/", "/audit/investigate/", "/"):
        assert 'id="chain-alarm"' not in auditor.get(page).content.decode(), page
    _tamper(events[1])
    _tamper(events[3])
    checked = auditor.post("/audit/chain/").content.decode()
    assert f"Broken at event #{events[1].id} and 1 more" in checked
    assert f"<td>#{events[3].id}</td>" in checked  # every broken event listed
    for page in ("/audit/", "/audit/cases/", "/audit/events/", "/audit/investigate/", "/"):
        body = auditor.get(page).content.decode()
        assert 'id="chain-alarm"' in body and "The audit chain is broken" in body, page
    listed = auditor.get("/audit/events/", {"code": "test."})
    flagged = listed.content.decode().count("chain-broken-row")
    assert flagged == 2
    # A clinician is not shown the auditors' banner.
    clinician = Client()
    clinician.force_login(alice)
    assert 'id="chain-alarm"' not in clinician.get("/").content.decode()


def test_the_chain_page_verifies_against_an_uploaded_checkpoint(
    auditor: Client, settings: object
) -> None:
    events = [record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}") for i in range(4)]
    # Checkpoints are signed by default now (the generated key): the upload is checked with it.
    saved = checkpoint_create(key=django_settings.BEDSIDE_AUDIT_CHECKPOINT_KEY).as_dict()

    def upload(data: bytes) -> str:
        response = auditor.post(
            "/audit/chain/",
            {"against": "checkpoint", "checkpoint": SimpleUploadedFile("head.json", data)},
        )
        return f"{response.status_code} {response.content.decode()}"

    assert "200" in upload(json.dumps(saved).encode())[:3]
    assert "still reaches the checkpoint" in upload(json.dumps(saved).encode())
    # Cut the tail off: the checkpoint shows it.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    AuditEvent.objects.filter(id__gte=events[-1].id).delete()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER USER")
    cut = upload(json.dumps(saved).encode())
    assert cut.startswith("200") and "truncated" in cut
    assert AuditEvent.objects.filter(code="audit.verified").last().outcome == "failure"  # type: ignore[union-attr]
    refused = upload(b"not json")
    assert refused.startswith("400") and "checkpoint" in refused and "not JSON" in refused

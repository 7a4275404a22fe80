"""A hook call whose fhirAuthorization grants write access has its case's answer written
back to the EHR's FHIR server as a Communication when the case finishes (a real server
process here, checking the bearer token), every attempt audited, never the token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from audit.models import AuditEvent
from clinical import lifecycle
from clinical.ehr import writeback
from clinical.ehr.tasks import send_case_writeback_task
from clinical.models import Case, CaseStatus, CdsWriteback
from tests.clinical.test_cds_hooks import PATIENT_VIEW, call, complete
from tests.clinical.test_cds_hooks_fetch import ASA, TOKEN, FhirServer, hook, patient_resource
from tests.fakes import FakeModelServer, choice, completion

WRITE_SCOPE = "user/*.read user/Communication.write"
EMPTY = {"resourceType": "Bundle", "type": "searchset"}


@pytest.fixture
def fhir_server(tmp_path: Path) -> Iterator[FhirServer]:
    server = FhirServer(tmp_path)
    yield server
    server.stop()


def full_prefetch() -> dict[str, Any]:
    """Everything the service asks for, sent: nothing is fetched (whatever the token)."""
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"text": "Hypertension"},
        "subject": {"reference": f"Patient/{ASA}"},
    }
    prefetch: dict[str, Any] = {
        key: EMPTY for key in ("encounters", "vitals", "labs", "medications", "allergies")
    }
    prefetch["patient"] = patient_resource()
    prefetch["conditions"] = EMPTY | {"entry": [{"resource": condition}]}
    return prefetch


def hook_with_scope(url: str, scope: str, token: str = TOKEN) -> dict[str, Any]:
    request = hook(url, full_prefetch(), token=token)
    request["fhirAuthorization"]["scope"] = scope
    return request


class Queue:
    """What the lifecycle enqueued for the write-back task, and its retries."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.retries: list[tuple[tuple[Any, ...], int]] = []
        monkeypatch.setattr(send_case_writeback_task, "delay", lambda *a: self.sent.append(a))
        monkeypatch.setattr(
            send_case_writeback_task,
            "apply_async",
            lambda args, countdown: self.retries.append((args, countdown)),
        )


def finish(
    request: dict[str, Any],
    ehr_key: Any,
    fake_model: FakeModelServer,
    capture: DjangoCaptureOnCommitCallbacks,
    *,
    fail: bool = False,
) -> Case:
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 200, response.json()
    case = Case.objects.get()
    with capture(execute=True):
        if fail:
            fake_model.push(completion([choice(i, "no JSON here") for i in range(3)]))
            lifecycle.case_run(case_id=case.id)
            case.refresh_from_db()
            assert case.status == CaseStatus.FAILED
        else:
            complete(case, fake_model)
    return case


def posted(server: FhirServer) -> list[dict[str, Any]]:
    return [r for r in server.requests() if r.get("method") == "POST"]


def test_a_finished_case_is_written_back_as_a_communication_with_the_token(
    ehr_key: Any,
    fhir_server: FhirServer,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.BEDSIDE_PUBLIC_URL = "https://bedside.hospital.example/"
    queue = Queue(monkeypatch)
    request = hook_with_scope(fhir_server.url, WRITE_SCOPE)
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks)
    assert queue.sent == [(str(case.id), 1)]
    assert send_case_writeback_task(str(case.id), 1) is True
    [arrived] = posted(fhir_server)
    assert arrived["path"] == "/Communication" and arrived["status"] == 201
    assert arrived["authorization"] == f"Bearer {TOKEN}"
    body = arrived["body"]
    assert body["resourceType"] == "Communication" and body["status"] == "completed"
    assert body["subject"] == {"reference": f"Patient/{ASA}"}
    link = f"https://bedside.hospital.example/cases/{case.id}/"
    assert {"contentAttachment": {"url": link, "title": "Open the case in Bedside"}} in body[
        "payload"
    ]
    text = body["payload"][0]["contentString"]
    assert "Community-acquired pneumonia" in text and "Confidence:" in text and link in text
    assert "AI-generated" in body["note"][0]["text"]
    event = AuditEvent.objects.get(code="ehr.writeback_sent")
    assert event.details["attempt"] == 1 and event.details["status_code"] == 201
    assert TOKEN not in json.dumps([e.details for e in AuditEvent.objects.all()])
    # The token is not kept once it has served.
    assert not CdsWriteback.objects.exists()
    assert queue.retries == []


def test_the_token_is_stored_encrypted(
    ehr_key: Any, fhir_server: FhirServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db import connection

    response = call(ehr_key, PATIENT_VIEW, hook_with_scope(fhir_server.url, WRITE_SCOPE))
    assert response.status_code == 200, response.json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, patient_id FROM clinical_cdswriteback")
        stored_token, stored_patient = cursor.fetchone()
    assert TOKEN not in stored_token and ASA not in stored_patient
    assert CdsWriteback.objects.get().access_token == TOKEN


def test_a_token_the_fhir_server_refuses_is_a_failed_attempt_audited_and_retried(
    ehr_key: Any,
    fhir_server: FhirServer,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    settings.BEDSIDE_FHIR_WRITEBACK_MAX_ATTEMPTS = 2
    settings.BEDSIDE_FHIR_WRITEBACK_BACKOFF_BASE_S = 7
    queue = Queue(monkeypatch)
    request = hook_with_scope(fhir_server.url, WRITE_SCOPE, token="wrong")
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks)
    assert send_case_writeback_task(str(case.id), 1) is False
    assert queue.retries == [((str(case.id), 2), 7)]
    assert send_case_writeback_task(str(case.id), 2) is False
    assert queue.retries == [((str(case.id), 2), 7)]  # bounded: no third attempt
    assert [r["status"] for r in posted(fhir_server)] == [401, 401]
    failures = AuditEvent.objects.filter(code="ehr.writeback_failed").order_by("id")
    assert [(e.details["attempt"], e.details["status_code"]) for e in failures] == [
        (1, 401),
        (2, 401),
    ]
    assert failures.last().details["gave_up"] is True  # type: ignore[union-attr]
    assert "wrong" not in json.dumps([e.details for e in failures])


def test_without_a_write_scope_nothing_is_sent(
    ehr_key: Any,
    fhir_server: FhirServer,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = Queue(monkeypatch)
    request = hook_with_scope(fhir_server.url, "user/*.read user/Communication.rs")
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks)
    assert queue.sent == []
    assert send_case_writeback_task(str(case.id), 1) is False
    assert posted(fhir_server) == []
    assert not AuditEvent.objects.filter(code__startswith="ehr.writeback").exists()


@pytest.mark.parametrize(
    ("scope", "writes"),
    [
        ("user/Communication.write", True),
        ("user/Communication.*", True),
        ("system/*.write", True),
        ("patient/*.*", True),
        ("patient/Communication.c", True),
        ("user/Communication.cruds", True),
        ("user/*.cu?category=alert", True),
        ("user/*.read", False),
        ("user/Communication.rs", False),
        ("user/Observation.write", False),
        ("launch openid", False),
    ],
)
def test_write_scopes_in_their_common_spellings(scope: str, writes: bool) -> None:
    assert writeback.grants_write(scope) is writes


def test_a_fhir_server_on_a_disallowed_host_is_refused(
    ehr_key: Any,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = Queue(monkeypatch)
    request = hook_with_scope("http://93.184.216.34/fhir", WRITE_SCOPE)
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks)
    assert queue.sent == [(str(case.id), 1)]
    assert send_case_writeback_task(str(case.id), 1) is False
    assert queue.retries == []  # a refusal is not retried
    event = AuditEvent.objects.get(code="ehr.writeback_failed")
    assert event.details["error"] == "refused" and event.details["gave_up"] is True
    assert "status_code" not in event.details  # no request was made


def test_a_failed_case_is_written_back_saying_it_failed(
    ehr_key: Any,
    fhir_server: FhirServer,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = Queue(monkeypatch)
    request = hook_with_scope(fhir_server.url, "system/*.write")
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks, fail=True)
    assert queue.sent == [(str(case.id), 1)]
    assert send_case_writeback_task(str(case.id), 1) is True
    [arrived] = posted(fhir_server)
    text = arrived["body"]["payload"][0]["contentString"]
    assert text.startswith("Bedside could not complete its assessment: ")
    assert case.status_detail[:40] in text


def test_an_expired_token_is_not_used_and_says_so(
    ehr_key: Any,
    fhir_server: FhirServer,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    Queue(monkeypatch)
    request = hook_with_scope(fhir_server.url, WRITE_SCOPE)
    case = finish(request, ehr_key, fake_model, django_capture_on_commit_callbacks)
    CdsWriteback.objects.update(expires_at=timezone.now())
    assert send_case_writeback_task(str(case.id), 1) is False
    assert posted(fhir_server) == []
    event = AuditEvent.objects.get(code="ehr.writeback_skipped")
    assert "expired" in event.details["reason"]
    assert not AuditEvent.objects.filter(code__in=["ehr.writeback_sent", "ehr.writeback_failed"])

"""Canary patient values sent through every intake path never reach what the real processes
write: gunicorn's and the Celery worker's stdout and stderr (production's JSON log format,
at DEBUG), nor the broker's files.

``tests/test_no_patient_data_in_logs.py`` checks the same in-process; this one runs the
processes as deploy/systemd does (gunicorn with its access log, a supervised thread-pool
worker) with a private Redis broker and a fake model server over HTTP. One case meets a
model server error and then answers that echo the canary and are not valid, so the
failure paths log too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from audit.models import AuditEvent
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical.models import Case, CaseStatus
from tests.clinical.conftest import ehr_clients, ehr_token
from tests.clinical.test_cds_hooks import with_prefetch
from tests.clinical.test_screens import form_data
from tests.factories import DATA, TEST_ACTOR
from tests.fakes import choice, completion
from tests.faults.support import Stack, private_broker, running_stack, wait_until_final
from tests.test_no_patient_data_in_logs import CANARY, canary_case

SYNTHEA = DATA / "public" / "synthea-r4" / "Buster_Hoeger_ad2e3fc5-2b5d-4cb9-8d03-9ea0f4ac8423.json"
ORDER_SIGN = DATA / "public" / "cds-hooks" / "examples" / "hl7spec__L306.json"
FHIR = "application/fhir+json"


@pytest.fixture
def ehr_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def stack(
    transactional_db: None, tmp_path: Path, ehr_key: ec.EllipticCurvePrivateKey
) -> Iterator[Stack]:
    env = {
        "BEDSIDE_LOG_FORMAT": "json",  # as deploy/bedside.env.example
        "BEDSIDE_LOG_LEVEL": "DEBUG",  # more than production logs
        "BEDSIDE_RETRY_BACKOFF_BASE_S": "1",
        "BEDSIDE_CDS_HOOKS_CLIENTS": json.dumps(ehr_clients(ehr_key)),
    }
    broker = private_broker("redis", tmp_path)
    with running_stack("canary", broker, env=env, worker_args=("--loglevel", "DEBUG")) as running:
        yield running


def signed_in_http(user: User, base_url: str) -> httpx.Client:
    """A browser session for ``user`` on the running web server, with its CSRF token."""
    django_client = Client()
    django_client.force_login(user)
    client = httpx.Client(base_url=base_url, timeout=30)
    client.cookies.set("sessionid", django_client.cookies["sessionid"].value)
    return client


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "the case form carries a CSRF token"
    return match.group(1)


def canary_order_sign() -> dict[str, Any]:
    text = ORDER_SIGN.read_text().replace("\\u2011", "-")
    text = text.replace("Amoxicillin", f"Amoxi{CANARY}").replace("Metformin", f"Met{CANARY}")
    request: dict[str, Any] = json.loads(text)
    request["prefetch"]["patient"] = {
        "resourceType": "Patient",
        "id": "1288992",
        "gender": "female",
        "birthDate": "1980-02-01",
        "name": [{"text": f"Ada {CANARY}"}],
    }
    return with_prefetch(request)  # all Bedside asks for: it has nothing to fetch


def submit_everywhere(stack: Stack, alice: User, ehr_key: ec.EllipticCurvePrivateKey) -> None:
    """The canary through the REST API, FHIR, CDS Hooks and the clinician's form, plus
    refused requests that carry it."""
    key = accounts_services.api_key_issue(
        name="canary-ehr", role=roles.INTEGRATION, actor=TEST_ACTOR
    ).key
    with httpx.Client(
        base_url=stack.web, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as ehr:
        assert ehr.post("/api/v1/cases/", json=canary_case()).status_code == 202
        refused = canary_case()
        refused["vitals"]["heart_rate"] = CANARY
        assert ehr.post("/api/v1/cases/", json=refused).status_code == 400
        broken = f'{{"chief_complaint": "{CANARY}", '
        assert ehr.post(
            "/api/v1/cases/", content=broken, headers={"Content-Type": "application/json"}
        ).status_code == 400  # fmt: skip
        fhir = ehr.post(
            "/api/v1/cases/",
            content=SYNTHEA.read_text().replace('"Buster', f'"{CANARY}Buster'),
            params={"chief_complaint": f"Fell at {CANARY} park", "question": f"Why {CANARY}?"},
            headers={"Content-Type": FHIR},
        )
        assert fhir.status_code == 202, fhir.text[:500]
        assert (
            ehr.get("/api/v1/cases/", params={"external_id": f"ED-{CANARY}-1"}).status_code == 200
        )

    hook_path = "/cds-services/bedside-order-sign"
    token = ehr_token(ehr_key, f"{stack.web}{hook_path}")
    hook = httpx.post(
        f"{stack.web}{hook_path}",
        json=canary_order_sign(),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert hook.status_code == 200, hook.text[:500]

    with signed_in_http(alice, stack.web) as browser:
        form = browser.get("/cases/new/")
        assert form.status_code == 200
        data = form_data(canary_case()) | {"csrfmiddlewaretoken": csrf_token(form.text)}
        submitted = browser.post("/cases/new/", data=data)
        assert submitted.status_code == 302, submitted.text[:500]
        data["vitals.temperature_c"] = f"{CANARY}"  # refused: the form comes back, no log
        assert browser.post("/cases/new/", data=data).status_code == 400


def test_canary_values_never_reach_worker_or_web_output_nor_the_broker(
    stack: Stack, alice: User, ehr_key: ec.EllipticCurvePrivateKey
) -> None:
    # First two cases whose model server misbehaves with the canary in what it says: one
    # meets server errors (the client's retries, then a Celery retry) and then answers that
    # echo the canary and are not valid; the other is refused with the canary in the error.
    echo = f"The patient {CANARY} has chest pain {{not json"
    for _ in range(3):
        stack.model.push({"error": {"message": f"overloaded reading {CANARY}"}}, status=500)
    stack.model.push(completion([choice(i, echo) for i in range(3)]))
    stack.model.push({"error": {"message": f"bad request: {CANARY}"}}, status=400)
    key = accounts_services.api_key_issue(
        name="canary-first", role=roles.INTEGRATION, actor=TEST_ACTOR
    ).key
    failing: list[str] = []
    with httpx.Client(
        base_url=stack.web, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        for _ in range(2):
            response = client.post("/api/v1/cases/", json=canary_case())
            assert response.status_code == 202
            failing.append(response.json()["id"])
            statuses = wait_until_final(failing[-1:], stack.env, timeout_s=60, sweep_every_s=1)
            assert statuses == {failing[-1]: CaseStatus.FAILED}
    assert AuditEvent.objects.filter(code="run.retry_scheduled", case_id=failing[0]).exists()

    submit_everywhere(stack, alice, ehr_key)
    cases = [str(c) for c in Case.objects.values_list("id", flat=True)]
    statuses = wait_until_final(cases, stack.env, timeout_s=60)
    assert len(cases) == 6  # REST, FHIR, CDS Hooks, the form, and the two that failed
    assert set(statuses.values()) <= {CaseStatus.COMPLETED, CaseStatus.FAILED}, statuses
    assert list(statuses.values()).count(CaseStatus.COMPLETED) >= 2, statuses  # REST and form
    # The canary is stored where it belongs, or the checks below would pass vacuously...
    assert all(CANARY in json.dumps(c.input) for c in Case.objects.all())
    assert stack.model.requests and all(CANARY in json.dumps(r) for r in stack.model.requests)
    for event in AuditEvent.objects.all():
        assert CANARY not in json.dumps(event.details), event.code

    # ...and reaches no process output, once the processes have stopped and flushed.
    stack.supervisor.stop()
    stack.web_process.terminate()
    stack.web_process.wait(timeout=20)
    stack.broker.stop()
    logs = stack.logs()
    assert '"level": "DEBUG"' in "".join(logs.values())  # DEBUG really was on
    assert "reasoning.run_case" in logs["canary-worker-0"]
    assert "POST /cds-services/bedside-order-sign" in logs["canary-web"]  # the access log
    for name, text in logs.items():
        assert CANARY not in text, f"{name}: {text[text.find(CANARY) - 300 :][:600]}"
    broker_bytes = b"".join(p.read_bytes() for p in stack.broker.files())
    assert b"reasoning.run_case" in broker_bytes  # the broker's file holds the messages
    assert CANARY.encode() not in broker_bytes
    # No result backend holds task results (they live in PostgreSQL).
    assert settings.CELERY_RESULT_BACKEND is None and settings.CELERY_TASK_IGNORE_RESULT

"""Canary patient values sent through every intake path never show up in log output,
error responses or audit details."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from clinical import lifecycle
from clinical.models import Case
from tests.conftest import client_for
from tests.factories import load_case
from tests.fakes import FakeModelServer

CANARY = "Zqx7Canary"


def canary_case() -> dict[str, Any]:
    case = load_case()
    case["external_id"] = f"ED-{CANARY}-1"
    case["chief_complaint"] = f"Chest pain since {CANARY} dinner"
    case["history_of_present_illness"] = f"Told {CANARY}-family about it."
    case["medications"][0]["name"] = f"{CANARY}mab"
    case["past_medical_history"] = [f"{CANARY} syndrome"]
    return case


@pytest.mark.django_db(transaction=True)
def test_canary_values_never_reach_logs_errors_or_audit_details(
    alice: User, ehr_client: Any, fake_model: FakeModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen_in_responses: list[str] = []

    # Accepted by a person and by an integration key, then run by the "worker".
    for client in (client_for(alice), ehr_client):
        response = client.post("/api/v1/cases/", canary_case(), format="json")
        assert response.status_code == 202
    # Refused: the values must not be echoed in the error either.
    bad = canary_case()
    bad["vitals"]["heart_rate"] = f"{CANARY}"
    bad["patient"]["sex"] = f"{CANARY}"
    refused = client_for(alice).post("/api/v1/cases/", bad, format="json")
    assert refused.status_code == 400
    seen_in_responses.append(refused.content.decode())
    # Malformed JSON with the canary inside.
    broken = client_for(alice).post(
        "/api/v1/cases/", data=f'{{"chief_complaint": "{CANARY}", ', content_type="application/json"
    )
    assert broken.status_code == 400
    seen_in_responses.append(broken.content.decode())

    for case in Case.objects.all():
        lifecycle.case_run(case_id=case.id)
        assert Case.objects.get(pk=case.pk).status == "completed"

    assert CANARY not in caplog.text
    for body in seen_in_responses:
        assert CANARY not in body
    for event in AuditEvent.objects.all():
        assert CANARY not in str(event.details)
    # ...while the canary is really stored where it belongs (the test would pass vacuously
    # if the cases had not been saved).
    assert sum(CANARY in case.input["chief_complaint"] for case in Case.objects.all()) == 2

"""A hook call whose prefetch lacks what Bedside asks for: the rest is fetched from the
EHR's FHIR server (a real server process here, serving the Synthea bundles and checking the
bearer token), with provenance in the audit trail; without access to it, a 412 that names
what is missing."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.models import AuditEvent
from clinical.models import Case
from tests.clinical.test_cds_hooks import PATIENT_VIEW, call

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = ROOT / "tests" / "data" / "public" / "synthea-r4"
# Asa: 5 active conditions, 5 active medications, 4 allergies.
ASA = "c79b748f-a792-4aea-bca5-c7c9c5b188cd"
TOKEN = "fhir-access-token-of-the-ehr"


class FhirServer:
    def __init__(self, tmp: Path, *extra: str) -> None:
        self.log = tmp / "fhir-requests.jsonl"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.fhir_server", "--data", str(SYNTHEA)),
                *("--token", TOKEN, "--log", str(self.log), *extra),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def fhir_server(tmp_path: Path) -> Iterator[FhirServer]:
    server = FhirServer(tmp_path)
    yield server
    server.stop()


def patient_resource() -> dict[str, Any]:
    for path in SYNTHEA.glob("Asa_*.json"):
        for entry in json.loads(path.read_text())["entry"]:
            if entry["resource"]["resourceType"] == "Patient":
                resource: dict[str, Any] = entry["resource"]
                return resource
    raise AssertionError("Asa's bundle has no Patient")


def hook(server_url: str | None, prefetch: dict[str, Any], token: str = TOKEN) -> dict[str, Any]:
    request: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": ASA},
        "prefetch": prefetch,
    }
    if server_url is not None:
        request["fhirServer"] = server_url
        request["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "user/*.read",
            "subject": "bedside",
        }
    return request


def queried_types(server: FhirServer) -> list[str]:
    return sorted(urlsplit(r["path"]).path.strip("/").split("/")[0] for r in server.requests())


def test_a_patient_view_with_only_the_patient_fetches_the_rest_from_the_fhir_server(
    ehr_key: Any, fhir_server: FhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = call(ehr_key, PATIENT_VIEW, hook(fhir_server.url, {"patient": patient_resource()}))
    assert response.status_code == 200, response.json()
    case = Case.objects.get()
    assert case.input["past_medical_history"], case.input
    assert case.input["medications"], case.input
    assert case.input["allergies"], case.input
    # Every search the templates name was made, with the token; the Patient it had was not.
    assert queried_types(fhir_server) == [
        "AllergyIntolerance",
        "Condition",
        "Encounter",
        "MedicationRequest",
        "Observation",
        "Observation",
    ]
    assert {r["status"] for r in fhir_server.requests()} == {200}
    fetched = AuditEvent.objects.get(code="cds.hook_answered").details["fetched_from_fhir_server"]
    by_key = {f["key"]: f for f in fetched}
    assert set(by_key) == {"encounters", "conditions", "vitals", "labs", "medications", "allergies"}
    assert by_key["conditions"]["resources"] == 5 and by_key["allergies"]["resources"] == 4
    assert by_key["conditions"]["query"].startswith("Condition?patient={{context.patientId}}")
    assert ASA not in json.dumps(fetched)  # the provenance names queries, not the patient
    assert ASA not in caplog.text  # nor do the logs (httpx logs each URL at INFO)


def test_null_prefetch_values_are_fetched_and_sent_ones_are_not(
    ehr_key: Any, fhir_server: FhirServer
) -> None:
    empty = {"resourceType": "Bundle", "type": "searchset"}
    prefetch = {
        "patient": patient_resource(),
        "encounters": empty,
        "conditions": None,
        "vitals": empty,
        "labs": None,
        "medications": empty,
        "allergies": empty,
    }
    response = call(ehr_key, PATIENT_VIEW, hook(fhir_server.url, prefetch))
    assert response.status_code == 200, response.json()
    assert queried_types(fhir_server) == ["Condition", "Observation"]
    assert Case.objects.get().input["past_medical_history"]


def test_the_patient_itself_is_fetched_when_absent(ehr_key: Any, fhir_server: FhirServer) -> None:
    response = call(ehr_key, PATIENT_VIEW, hook(fhir_server.url, {}))
    assert response.status_code == 200, response.json()
    assert "Patient" in queried_types(fhir_server)
    assert Case.objects.get().input["patient"]["sex"] == "male"


def test_without_a_fhir_server_the_missing_keys_are_a_412(ehr_key: Any) -> None:
    response = call(ehr_key, PATIENT_VIEW, hook(None, {"patient": patient_resource()}))
    assert response.status_code == 412
    errors = response.json()["errors"]
    assert [e["loc"] for e in errors] == [
        ["prefetch", key]
        for key in ("encounters", "conditions", "vitals", "labs", "medications", "allergies")
    ]
    assert "no fhirServer" in errors[0]["msg"]
    assert Case.objects.count() == 0


def test_a_token_the_fhir_server_refuses_is_a_412(ehr_key: Any, fhir_server: FhirServer) -> None:
    request = hook(fhir_server.url, {"patient": patient_resource()}, token="wrong")
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 412
    assert all("HTTP 401" in e["msg"] for e in response.json()["errors"])
    assert Case.objects.count() == 0


def test_a_fhir_server_on_a_public_address_is_not_sent_the_token(ehr_key: Any) -> None:
    request = hook("http://93.184.216.34/fhir", {"patient": patient_resource()})
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 412
    error = response.json()["errors"][0]
    assert error["loc"] == ["fhirServer"]
    assert "public address" in error["msg"] and "BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS" in error["msg"]


def test_a_fhir_server_that_does_not_answer_in_time_is_a_412(
    ehr_key: Any, tmp_path: Path, settings: Any
) -> None:
    settings.BEDSIDE_FHIR_FETCH_TIMEOUT_S = 0.5
    slow = FhirServer(tmp_path, "--delay", "5")
    try:
        response = call(ehr_key, PATIENT_VIEW, hook(slow.url, {"patient": patient_resource()}))
    finally:
        slow.stop()
    assert response.status_code == 412
    assert all("0.5 s" in e["msg"] or "Timeout" in e["msg"] for e in response.json()["errors"])
    assert Case.objects.count() == 0


def test_an_answer_over_the_size_limit_is_a_412(
    ehr_key: Any, fhir_server: FhirServer, settings: Any
) -> None:
    settings.BEDSIDE_FHIR_FETCH_MAX_BYTES = 2048
    response = call(ehr_key, PATIENT_VIEW, hook(fhir_server.url, {"patient": patient_resource()}))
    assert response.status_code == 412
    assert any("over 2048 bytes" in e["msg"] for e in response.json()["errors"])

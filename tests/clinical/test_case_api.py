"""The case API: accepted cases are queued and audited; bad input is a 4xx naming the
field and saves nothing; each role sees what it should."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.contrib.auth.models import User
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from audit.models import AuditEvent
from bedside.accounts.services import IssuedKey
from bedside.vault.encryption import lookup_hash
from clinical.models import Case
from tests.conftest import client_for
from tests.factories import load_case

URL = "/api/v1/cases/"


def post_raw(client: APIClient, body: bytes, content_type: str = "application/json"):  # type: ignore[no-untyped-def]
    return client.generic("POST", URL, body, content_type=content_type)


def test_integration_key_submits_case_and_gets_202_queued(
    ehr_client: APIClient,
    integration_key: IssuedKey,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = ehr_client.post(URL, load_case(), format="json")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert body["links"]["self"].endswith(f"/api/v1/cases/{body['id']}/")
    assert response["Location"] == body["links"]["self"]
    assert body["input"]["patient"]["age_years"] == 64
    assert body["result"] is None
    case = Case.objects.get(id=body["id"])
    assert case.submitted_by == integration_key.api_key.user
    event = AuditEvent.objects.get(code="case.submitted")
    assert event.case_id == case.id
    assert event.actor_label == "key:ehr-test"
    assert len(callbacks) == 1  # the task is sent only after the commit


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda d: d["vitals"].update(spo2=140), ["vitals", "spo2"]),
        (lambda d: d.pop("question"), ["question"]),
        (lambda d: d["patient"].update(age_years="old"), ["patient", "age_years"]),
        (lambda d: d.update(unexpected=True), ["unexpected"]),
    ],
)
def test_invalid_case_is_400_with_field_path_and_saves_nothing(
    ehr_client: APIClient, mutate, loc
) -> None:  # type: ignore[no-untyped-def]
    data = load_case()
    mutate(data)
    response = ehr_client.post(URL, data, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert loc in [e["loc"] for e in errors]
    assert all(e["msg"] for e in errors)
    assert all(set(e) <= {"loc", "msg", "type"} for e in errors)  # values are never echoed
    assert Case.objects.count() == 0


def test_implausible_case_is_400_in_clinical_words_with_the_field_path(
    ehr_client: APIClient,
) -> None:
    data = load_case()
    data["vitals"].update(systolic_bp=58, diastolic_bp=92, temperature_c=98.6)
    data["labs"][0].update(value="pending")  # the status typed as the value
    response = ehr_client.post(URL, data, format="json")
    assert response.status_code == 400
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
    assert errors[("vitals", "diastolic_bp")].startswith(
        "Diastolic blood pressure must be lower than systolic"
    )
    assert errors[("vitals", "temperature_c")] == (
        "Temperature is in °C: this looks like °F, which is 37.0 °C"
    )
    assert "status, not its value" in errors[("labs", 0, "value")]
    assert Case.objects.count() == 0


def test_lab_status_is_taken_and_returned_and_defaults_to_final(ehr_client: APIClient) -> None:
    data = load_case()
    data["labs"].append({"name": "Lactate", "status": "pending"})
    response = ehr_client.post(URL, data, format="json")
    assert response.status_code == 202, response.json()
    labs = response.json()["input"]["labs"]
    assert [(lab["status"], lab["value"]) for lab in labs] == [("final", 2.3), ("pending", None)]


@pytest.mark.parametrize(
    "body",
    [
        b"this is not json",
        b'{"patient": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"chief_complaint": "\xff\xfe"}',
        b"[1, 2, 3]",
        b"1e999",
    ],
    ids=["not-json", "nan", "deeply-nested", "invalid-utf8", "array", "huge-number"],
)
def test_malformed_bodies_are_400_not_500(ehr_client: APIClient, body: bytes) -> None:
    response = post_raw(ehr_client, body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["msg"]
    assert Case.objects.count() == 0


def test_oversized_body_is_413(ehr_client: APIClient, settings) -> None:  # type: ignore[no-untyped-def]
    # Case intake takes a patient's record: its limit is BEDSIDE_MAX_FHIR_BODY_BYTES.
    settings.BEDSIDE_MAX_FHIR_BODY_BYTES = 200_000
    data = load_case()
    data["history_of_present_illness"] = "x" * (settings.BEDSIDE_MAX_FHIR_BODY_BYTES + 10)
    response = post_raw(ehr_client, json.dumps(data).encode())
    assert response.status_code == 413
    assert "larger than" in response.json()["errors"][0]["msg"]
    assert Case.objects.count() == 0


def test_wrong_content_type_is_415(ehr_client: APIClient) -> None:
    response = post_raw(ehr_client, b"age=64", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["errors"][0]["msg"]


def test_anonymous_and_bad_key_are_refused(db: None) -> None:
    assert APIClient().post(URL, load_case(), format="json").status_code in (401, 403)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer bsk_nothere_secret")
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json()["errors"][0]["msg"] == "invalid or revoked API key"


def test_auditor_cannot_submit_but_reads_every_case(alice: User, carol: User) -> None:
    client_for(alice).post(URL, load_case(), format="json")
    auditor = client_for(carol)
    assert auditor.post(URL, load_case(), format="json").status_code == 403
    listing = auditor.get(URL).json()
    assert listing["count"] == 1


def test_clinician_sees_only_own_cases(alice: User, bob: User) -> None:
    case_id = client_for(alice).post(URL, load_case(), format="json").json()["id"]
    hidden = client_for(bob).get(f"{URL}{case_id}/")
    assert hidden.status_code == 404
    assert hidden.json() == {"errors": [{"loc": [], "msg": "No Case matches the given query."}]}
    assert client_for(bob).get(URL).json()["count"] == 0
    detail = client_for(alice).get(f"{URL}{case_id}/")
    assert detail.status_code == 200
    assert AuditEvent.objects.filter(code="case.viewed", case_id=case_id).count() == 1


def test_list_is_paginated_and_filterable(alice: User) -> None:
    client = client_for(alice)
    for i in range(30):
        data = load_case()
        data["external_id"] = f"ED-{i}"
        client.post(URL, data, format="json")
    first = client.get(URL).json()
    assert first["count"] == 30
    assert len(first["results"]) == 25
    assert first["next"] is not None
    second = client.get(first["next"]).json()
    assert len(second["results"]) == 5
    only = client.get(URL, {"external_id": "ED-7"}).json()
    assert [c["external_id"] for c in only["results"]] == ["ED-7"]
    assert client.get(URL, {"status": "bogus"}).status_code == 400
    assert client.get(URL, {"status": ""}).status_code == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("page_size", "many"),
        ("page_size", "0"),
        ("page_size", "101"),
        ("page", "0"),
        ("page", "last"),
    ],
)
def test_a_page_or_size_that_is_not_a_number_in_range_is_400_naming_it(
    alice: User, name: str, value: str
) -> None:
    # Not DRF's quiet fallback to 25 (or cap at 100): the integrator would never know.
    response = client_for(alice).get(URL, {name: value})
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["errors"]] == [["query", name]]


def test_a_case_id_that_is_not_a_uuid_is_a_json_404_on_the_api_only(alice: User) -> None:
    client = client_for(alice)
    for path in (f"{URL}not-a-uuid/", f"{URL}not-a-uuid/reviews/", "/cds-services/a/b"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["errors"][0]["loc"] == ["path"]
    # The screens keep Django's page.
    page = client.get("/cases/not-a-uuid/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")


def test_a_page_past_the_last_is_404_in_the_error_shape(alice: User) -> None:
    client = client_for(alice)
    client.post(URL, load_case(), format="json")
    assert len(client.get(URL, {"page_size": "100"}).json()["results"]) == 1
    response = client.get(URL, {"page": "2"})
    assert response.status_code == 404
    assert response.json() == {"errors": [{"loc": [], "msg": "Invalid page."}]}


def test_people_sign_in_with_a_session_and_land_on_home(alice: User) -> None:
    from django.test import Client

    browser = Client()
    assert browser.get("/").status_code == 302  # to the login page
    response = browser.post(
        "/accounts/login/", {"username": "alice", "password": "correct horse battery"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    home = browser.get("/")
    assert home.status_code == 200
    assert b"alice" in home.content and b"clinician" in home.content


def test_every_case_carries_its_early_warning_scores_from_intake_and_the_ledger_keeps_them(
    ehr_client: APIClient,
) -> None:
    # The chest-pain case: HR 110 (1), systolic 150 (0), RR 22 (2), 37.1 °C (0), SpO₂ 94 (1):
    # NEWS2 4, low; qSOFA 1 (RR ≥ 22); shock index 110/150 = 0.73, elevated.
    body = ehr_client.post(URL, load_case(), format="json").json()
    assert body["status"] == "queued"
    scores = {s["name"]: s for s in body["early_warning"]}
    assert (scores["NEWS2"]["score"], scores["NEWS2"]["risk"]) == (4, "low")
    assert (scores["qSOFA"]["score"], scores["qSOFA"]["risk"]) == (1, "low")
    assert (scores["Shock index"]["score"], scores["Shock index"]["risk"]) == (0.73, "elevated")
    assert {"parameter": "consciousness", "label": "Consciousness", "assumed": "alert"} in scores[
        "NEWS2"
    ]["missing"]
    assert body["early_warning_alert"] is False
    assert body["early_warning_not_scored"] == []
    again = ehr_client.get(f"{URL}{body['id']}/").json()
    assert again["early_warning"] == body["early_warning"]
    details = AuditEvent.objects.get(code="case.submitted").details["early_warning"]
    assert details["alert"] is False
    assert [(s["name"], s["score"], s["risk"]) for s in details["scores"]] == [
        ("NEWS2", 4, "low"),
        ("qSOFA", 1, "low"),
        ("Shock index", 0.73, "elevated"),
    ]
    assert "110" not in json.dumps(details)  # points and codes, never the vital signs


def test_a_case_without_vitals_has_no_scores_and_says_so(ehr_client: APIClient) -> None:
    data = load_case()
    del data["vitals"]
    body = ehr_client.post(URL, data, format="json").json()
    assert body["early_warning"] == []
    assert body["early_warning_not_scored"] == ["no vital signs recorded"]
    assert body["early_warning_alert"] is False


def test_a_case_with_some_vitals_gets_partial_scores_and_a_high_one_alerts(
    ehr_client: APIClient,
) -> None:
    data = load_case()
    data["vitals"] = {"heart_rate": 118, "respiratory_rate": 26, "spo2": 89}
    body = ehr_client.post(URL, data, format="json").json()
    news2 = body["early_warning"][0]
    assert (news2["name"], news2["score"], news2["risk"], news2["partial"]) == (
        "NEWS2",
        8,
        "high",
        True,
    )
    assert [m["parameter"] for m in news2["missing"] if m["assumed"] is None] == [
        "systolic_bp",
        "temperature_c",
    ]
    assert body["early_warning_alert"] is True
    assert body["early_warning_not_scored"] == [
        "shock index not computed: it needs both heart rate and systolic BP"
    ]


# --- API details (defect 10) -----------------------------------------------------------------


def test_an_unknown_case_list_filter_is_400_naming_it(alice: User) -> None:
    response = client_for(alice).get(URL, {"stauts": "failed", "patient": "x", "status": "queued"})
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [
        ["query", "patient"],
        ["query", "stauts"],
    ]


def test_the_case_list_filters_by_updated_since(alice: User) -> None:
    from datetime import timedelta

    from django.utils import timezone

    client = client_for(alice)
    for name in ("ED-old", "ED-new"):
        client.post(URL, {**load_case(), "external_id": name}, format="json")
    long_ago = timezone.now() - timedelta(days=3)
    Case.objects.filter(external_id_hash=lookup_hash("ED-old")).update(updated_at=long_ago)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    listed = client.get(URL, {"updated_since": since}).json()
    assert [c["external_id"] for c in listed["results"]] == ["ED-new"]
    naive = (timezone.now() - timedelta(days=5)).replace(tzinfo=None).isoformat()
    assert client.get(URL, {"updated_since": naive}).json()["count"] == 2
    # An offset PostgreSQL would refuse (past ±15:59) is a time all the same.
    assert client.get(URL, {"updated_since": "2001-02-06T17:27:45+21:09"}).json()["count"] == 2
    for bad_value in ("yesterday", "0.5", "1700000000"):  # a number is not a date-time
        bad = client.get(URL, {"updated_since": bad_value})
        assert bad.status_code == 400, bad_value
        assert bad.json()["errors"][0]["loc"] == ["query", "updated_since"]


def test_a_fhir_bundle_sent_as_plain_json_is_told_its_content_type(
    ehr_client: APIClient,
) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    response = ehr_client.post(URL, bundle, format="json")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["loc"] == ["header", "Content-Type"]
    assert "application/fhir+json" in error["msg"]


def test_a_cds_hooks_call_is_allowed_a_record_sized_body(db: None, settings: Any) -> None:
    """A prefetch is a patient's record: a CDS Hooks call over the 1 MiB of other routes
    reaches the service (here: a 401, no JWT), and a review that large does not."""
    from django.test import Client

    settings.BEDSIDE_MAX_BODY_BYTES = 1_048_576
    settings.BEDSIDE_MAX_FHIR_BODY_BYTES = 8_388_608
    body = json.dumps({"prefetch": {"padding": "x" * 2_000_000}})
    hook = Client().post(
        "/cds-services/bedside-patient-view", body, content_type="application/json"
    )
    assert hook.status_code == 401, hook.content[:200]
    review = Client().post(f"{URL}{uuid.uuid4()}/reviews/", body, content_type="application/json")
    assert review.status_code == 413

"""The auditors' screens render what an auditor needs, filter, sort, export valid FHIR,
and write the events that say who looked."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from fhir.resources.R4B.bundle import Bundle

from audit.models import AuditEvent
from clinical import lifecycle
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseInput
from clinical.services import case_submit
from reasoning.confidence import Band, band_of
from tests import factories
from tests.factories import TEST_ACTOR, load_case
from tests.fakes import FakeModelServer, assessment, choice, completion


@pytest.fixture
def reviewed_case(completed_case: Case, alice: User) -> Case:
    return factories.reviewed_case(
        completed_case,
        alice,
        decision="reject",
        reason_code="cds-not-applicable",
        reason_text="troponin was drawn too early",
    )


@pytest.fixture
def auditor(carol: User) -> Client:
    client = Client()
    client.force_login(carol)
    return client


def _new_events(since_id: int) -> list[str]:
    return list(AuditEvent.objects.filter(id__gt=since_id).values_list("code", flat=True))


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_case_list_filters_sorts_and_shows_the_latest_review(
    auditor: Client, reviewed_case: Case
) -> None:
    before = _last_id()
    page = auditor.get("/audit/cases/", {"decision": "reject", "system": "person"})
    assert page.status_code == 200
    body = page.content.decode()
    assert f"/audit/cases/{reviewed_case.id}/" in body
    assert "decision-reject" in body
    assert _new_events(before) == ["audit.viewed"]
    event = AuditEvent.objects.get(id__gt=before)
    assert event.details["filters"] == {
        "decision": "reject",
        "system": "person",
        "sort": "-created_at",
    }
    # A filter that matches nothing says so, and offers to clear the filters.
    empty = auditor.get("/audit/cases/", {"decision": "accept"}).content.decode()
    assert "No cases match" in empty and f"/audit/cases/{reviewed_case.id}/" not in empty
    for column in (
        "created_at",
        "-submitter",
        "system",
        "-model_revision",
        "confidence",
        "decision",
    ):
        sorted_page = auditor.get("/audit/cases/", {"sort": column})
        assert sorted_page.status_code == 200, column
        assert f"/audit/cases/{reviewed_case.id}/" in sorted_page.content.decode()


def test_case_list_refuses_bad_filters_with_the_field_named(auditor: Client, db: None) -> None:
    page = auditor.get("/audit/cases/", {"sort": "password", "confidence": "huge"})
    assert page.status_code == 400
    body = page.content.decode()
    assert "sort" in body and "confidence" in body


def test_case_page_shows_input_runs_reviews_and_timeline(
    auditor: Client, reviewed_case: Case
) -> None:
    before = _last_id()
    page = auditor.get(f"/audit/cases/{reviewed_case.id}/")
    assert page.status_code == 200
    body = page.content.decode()
    run = reviewed_case.runs.get()
    for expected in (
        "case.submitted",
        "run.completed",
        "review.recorded",
        "Crushing chest pain",  # the input
        run.prompt_sha256[:10],
        run.confidence_method,
        "troponin was drawn too early",  # the review's comment lives on the review row
        "Rejected",
    ):
        assert expected in body, expected
    assert _new_events(before) == ["case.viewed"]


def test_csv_export_has_every_event_of_the_range(auditor: Client, reviewed_case: Case) -> None:
    response = auditor.get("/audit/events/export.csv", {"case": str(reviewed_case.id)})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = list(
        AuditEvent.objects.filter(case_id=reviewed_case.id)
        .order_by("id")
        .values_list("code", flat=True)
    )
    assert [row["code"] for row in rows] == expected
    assert AuditEvent.objects.filter(code="export.created", object_id="csv").count() == 1


def test_fhir_export_is_a_valid_bundle_with_ai_provenance(
    auditor: Client, reviewed_case: Case, alice: User
) -> None:
    response = auditor.get("/audit/events/export.fhir.json", {"case": str(reviewed_case.id)})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/fhir+json"
    bundle = json.loads(response.content)
    Bundle.model_validate(bundle)  # valid per the R4B models
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert (
        kinds.count("AuditEvent")
        == AuditEvent.objects.filter(
            case_id=reviewed_case.id, id__lt=AuditEvent.objects.get(code="export.created").id
        ).count()
    )
    provenance = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"
    )
    run = reviewed_case.runs.get()
    agents = {a["type"]["coding"][0]["code"]: a["who"] for a in provenance["agent"]}
    assert agents["author"]["reference"] == "#model"
    assert agents["verifier"]["display"] == "alice"
    device = provenance["contained"][0]
    assert (
        device["resourceType"] == "Device" and device["version"][0]["value"] == run.model_revision
    )
    assert provenance["extension"][0]["valueDecimal"] == pytest.approx(run.confidence)
    assert provenance["meta"]["security"][0]["code"] == "AIAST"
    # The checked answer's ICD-10-CM codes travel with the export.
    coded = [d["coding"] for d in run.assessment["differential"] if d.get("coding")]
    assert coded, run.assessment
    derived = {
        e["what"]["identifier"]["value"]
        for e in provenance["entity"]
        if e["role"] == "derivation"
        and e["what"]["identifier"]["system"] == "http://hl7.org/fhir/sid/icd-10-cm"
    }
    assert derived == {c["code"] for c in coded}


def test_overview_draws_the_four_charts(auditor: Client, reviewed_case: Case) -> None:
    page = auditor.get("/audit/")
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("<svg") == 4
    assert "Override rate by model revision" in body
    assert "1 of 1 reviewed cases overridden" in body  # the rejected case, as a bar's tooltip


def test_chain_status_verifies_on_request(auditor: Client, reviewed_case: Case) -> None:
    assert auditor.get("/audit/chain/").status_code == 200
    before = _last_id()
    page = auditor.post("/audit/chain/")
    assert page.status_code == 200
    assert "Intact" in page.content.decode()
    assert _new_events(before) == ["audit.verified"]


def test_clinicians_cannot_open_audit_screens(alice: User, reviewed_case: Any) -> None:
    client = Client()
    client.force_login(alice)
    for path in ("/audit/", "/audit/cases/", f"/audit/cases/{reviewed_case.id}/", "/audit/chain/"):
        assert client.get(path).status_code == 403, path


def test_exports_refuse_bad_filters_with_the_field_named(auditor: Client, db: None) -> None:
    for path in ("/audit/events/export.csv", "/audit/events/export.fhir.json"):
        response = auditor.get(path, {"case": "not-a-uuid"})
        assert response.status_code == 400
        assert "case" in response.content.decode()
    assert not AuditEvent.objects.filter(code="export.created").exists()


def test_events_api_filters_and_refuses_bad_input(carol: User, reviewed_case: Case) -> None:
    from tests.conftest import client_for

    client = client_for(carol)
    body = client.get("/api/v1/audit/events/", {"case": str(reviewed_case.id)}).json()
    codes = [e["code"] for e in body["results"]]
    assert codes[0] == "case.submitted" and "review.recorded" in codes
    assert {e["case_id"] for e in body["results"]} == {str(reviewed_case.id)}
    bad = client.get("/api/v1/audit/events/", {"since": "yesterday", "colour": "red"})
    assert bad.status_code == 400
    locs = {tuple(e["loc"]) for e in bad.json()["errors"]}
    assert ("query", "since") in locs and ("query", "colour") in locs


def test_fhir_export_of_too_many_events_asks_for_a_narrower_range(
    auditor: Client, reviewed_case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit import views

    monkeypatch.setattr(views, "FHIR_EXPORT_MAX_EVENTS", 2)
    response = auditor.get("/audit/events/export.fhir.json", {"case": str(reviewed_case.id)})
    assert response.status_code == 400
    assert "more than 2 events: narrow the time range" in response.content.decode()
    assert not AuditEvent.objects.filter(code="export.created").exists()


def test_the_auditor_list_and_the_clinician_page_name_the_same_band(
    auditor: Client, alice: User, fake_model: FakeModelServer
) -> None:
    # 0.76: "high" on the clinician's page but "medium" in the auditor's filter before the
    # two screens shared one table (0.75 and 0.8 were their lower bounds of "high").
    case = case_submit(
        case_input=CaseInput.model_validate(load_case()), actor=TEST_ACTOR, submitted_by=alice
    )
    answer = json.dumps(assessment("Acute MI", confidence=0.4))
    fake_model.push(completion([choice(i, answer, logprobs=[math.log(0.4)]) for i in range(3)]))
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED
    run = case.runs.get()
    assert run.confidence == pytest.approx(0.76)
    band = band_of(run.confidence)
    assert band == Band.HIGH

    clinician = Client()
    clinician.force_login(alice)
    clinician_page = clinician.get(f"/cases/{case.id}/").content.decode()
    assert f'<span class="band">{band}</span>' in clinician_page

    listed = auditor.get("/audit/cases/", {"confidence": band.value}).content.decode()
    assert f"/audit/cases/{case.id}/" in listed
    assert f'{run.confidence:.2f} <span class="band">{band}</span>' in listed
    for other in Band:
        if other != band:
            page = auditor.get("/audit/cases/", {"confidence": other.value}).content.decode()
            assert f"/audit/cases/{case.id}/" not in page


def test_case_page_shows_the_early_warning_scores_recorded_at_intake(
    auditor: Client, reviewed_case: Case
) -> None:
    # The chest-pain case: NEWS2 4 (low), qSOFA 1 (low), shock index 0.73 (elevated).
    body = auditor.get(f"/audit/cases/{reviewed_case.id}/").content.decode()
    submitted = AuditEvent.objects.get(code="case.submitted", case_id=reviewed_case.id)
    assert f"As recorded at intake (event {submitted.id})" in body
    section = body[body.index('id="early-warning"') : body.index('id="timeline"')]
    for expected in ("NEWS2", "<strong>4</strong>", "qSOFA", "Shock index", "0.73", "elevated"):
        assert expected in section, expected
    assert "<code>consciousness</code>" in section
    assert "<strong>no</strong>" in section  # no alert


def test_case_page_of_a_case_without_vitals_says_it_was_not_scored(
    auditor: Client, alice: User
) -> None:
    data = load_case()
    del data["vitals"]
    case = case_submit(
        case_input=CaseInput.model_validate(data), actor=TEST_ACTOR, submitted_by=alice
    )
    body = auditor.get(f"/audit/cases/{case.id}/").content.decode()
    assert "Not scored: <code>no_vitals</code>" in body

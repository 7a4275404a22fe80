"""FHIR R4 intake: every Synthea record becomes a sensible case from its latest encounter;
units are converted; invalid resources are a 400 naming the entry and the field."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from clinical.ehr.fhir import DEFAULT_QUESTION, CaseParameters, case_input_from_bundle
from clinical.models import Case
from tests.factories import load_case

URL = "/api/v1/cases/"
FHIR = "application/fhir+json"
SHARED = Path(__file__).resolve().parents[1] / "data" / "public"
SYNTHEA = sorted((SHARED / "synthea-r4").glob("*.json"))
HL7_BUNDLES = sorted((SHARED / "fhir-r4-examples").glob("Bundle-*.json"))


def post_fhir(client: APIClient, bundle: Any, query: str = "") -> Any:
    return client.generic("POST", URL + query, json.dumps(bundle), content_type=FHIR)


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def _latest_encounter(bundle: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"]
    latest = max(entries, key=lambda e: e["resource"]["period"]["start"])
    return latest["fullUrl"], latest["resource"]


def test_synthea_data_is_present() -> None:
    assert len(SYNTHEA) == 30
    assert len(HL7_BUNDLES) > 20


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.stem.split("_")[0])
def test_every_synthea_record_becomes_a_case_from_its_latest_encounter(
    ehr_client: APIClient, path: Path
) -> None:
    bundle = json.loads(path.read_text())
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 202, response.json()
    body = response.json()
    case = body["input"]

    # Age and sex, worked out here independently from the raw JSON.
    patient = _resources(bundle, "Patient")[0]
    encounter_ref, encounter = _latest_encounter(bundle)
    born = date.fromisoformat(patient["birthDate"])
    seen = date.fromisoformat(encounter["period"]["start"][:10])
    if patient.get("deceasedDateTime"):
        seen = min(seen, date.fromisoformat(patient["deceasedDateTime"][:10]))
    age = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    assert case["patient"]["age_years"] == age
    assert case["patient"]["sex"] == patient["gender"]
    assert (
        case["setting"]
        == {"AMB": "outpatient", "EMER": "emergency", "IMP": "inpatient"}[
            encounter["class"]["code"]
        ]
    )
    assert body["fhir"]["encounter"] == f"Encounter/{encounter['id']}"
    assert body["fhir"]["ignored"].get("Claim", 0) > 0
    assert case["question"] == DEFAULT_QUESTION
    assert case["chief_complaint"]

    # Every vital sign recorded at the latest encounter is in the case, in its unit.
    vitals = case["vitals"] or {}
    for obs in _resources(bundle, "Observation"):
        if obs.get("encounter", {}).get("reference") != encounter_ref:
            continue
        code = obs["code"]["coding"][0]["code"]
        if code == "29463-7":
            assert vitals["weight_kg"] == pytest.approx(obs["valueQuantity"]["value"], abs=0.05)
        if code == "55284-4":
            readings = {
                c["code"]["coding"][0]["code"]: c["valueQuantity"] for c in obs["component"]
            }
            assert vitals["systolic_bp"] == round(readings["8480-6"]["value"])
            assert vitals["diastolic_bp"] == round(readings["8462-4"]["value"])
        if code == "8331-1":
            assert vitals["temperature_c"] == pytest.approx(obs["valueQuantity"]["value"], abs=0.05)
    assert 0 < vitals.get("weight_kg", 1) < 300

    # Conditions active at the encounter are the past medical history; resolved ones are not.
    start = encounter["period"]["start"]
    for condition in _resources(bundle, "Condition"):
        name = condition["code"]["text"]
        status = condition["clinicalStatus"]["coding"][0]["code"]
        onset = condition.get("onsetDateTime", "")
        abated = condition.get("abatementDateTime")
        if status == "active" and onset <= start and not abated:
            assert name in case["past_medical_history"]
        if abated and abated <= start and status != "active":
            same_name_active = any(
                c["code"]["text"] == name and c["clinicalStatus"]["coding"][0]["code"] == "active"
                for c in _resources(bundle, "Condition")
            )
            if not same_name_active:
                assert name not in case["past_medical_history"]
    assert Case.objects.get(id=body["id"]).input == case


def _encounter(ref_id: str = "enc-1", start: str = "2026-03-01T10:00:00Z") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": ref_id,
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "reasonCode": [{"text": "Chest pain radiating to the left arm"}],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": start},
    }


def _quantity_obs(oid: str, loinc: str, value: float, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": extra.pop("category", "vital-signs"),
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}], "text": loinc},
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/enc-1"},
        "effectiveDateTime": "2026-03-01T10:05:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org"}
        | {"code": unit},
        **extra,
    }


def hand_made_bundle() -> dict[str, Any]:
    """An ED visit in US units, with an older visit whose data must not leak in."""
    bp_panel = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "encounter": {"reference": "Encounter/enc-1"},
        "effectiveDateTime": "2026-03-01T10:05:00Z",
        "component": [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 152, "unit": "mmHg", "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 91, "unit": "mmHg", "code": "mm[Hg]"},
            },
        ],
    }
    old_hr = _quantity_obs("old-hr", "8867-4", 64, "/min")
    old_hr["encounter"] = {"reference": "Encounter/enc-0"}
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1961-06-15"},
        _encounter("enc-0", "2025-01-01T09:00:00Z"),
        _encounter(),
        _quantity_obs("hr", "8867-4", 112, "/min"),
        old_hr,
        _quantity_obs("rr", "9279-1", 22, "/min"),
        _quantity_obs("temp", "8310-5", 100.4, "[degF]"),
        _quantity_obs("spo2", "59408-5", 93, "%"),
        _quantity_obs("wt", "29463-7", 180, "[lb_av]"),
        bp_panel,
        _quantity_obs(
            "trop",
            "10839-9",
            2.3,
            "ng/mL",
            category="laboratory",
            referenceRange=[{"high": {"value": 0.04, "unit": "ng/mL"}}],
        ),
        {
            "resourceType": "Condition",
            "id": "htn",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "Hypertension"},
            "subject": {"reference": "Patient/p1"},
        },
        {
            "resourceType": "Condition",
            "id": "old",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"text": "Acute bronchitis"},
            "subject": {"reference": "Patient/p1"},
        },
        {"resourceType": "Medication", "id": "met", "code": {"text": "metformin 500 mg tablet"}},
        {
            "resourceType": "MedicationStatement",
            "id": "ms",
            "status": "active",
            "medicationReference": {"reference": "Medication/met"},
            "subject": {"reference": "Patient/p1"},
            "dosage": [
                {
                    "route": {"text": "oral"},
                    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                    "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                }
            ],
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "pen",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"text": "penicillin"},
            "patient": {"reference": "Patient/p1"},
            "reaction": [{"manifestation": [{"text": "rash"}], "severity": "mild"}],
        },
        {"resourceType": "Claim", "id": "c1"},
        {"resourceType": "Claim", "id": "c2"},
        {"resourceType": "Provenance", "id": "pv"},
    ]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"http://ehr.example/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def test_hand_made_ed_visit_maps_every_section_and_converts_units(ehr_client: APIClient) -> None:
    response = post_fhir(
        ehr_client, hand_made_bundle(), "?question=Is+this+an+acute+coronary+syndrome%3F"
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    case = body["input"]
    assert case["patient"] == {"age_years": 64, "sex": "male", "pregnant": None}
    assert case["setting"] == "emergency"
    assert case["chief_complaint"] == "Chest pain radiating to the left arm"
    assert case["question"] == "Is this an acute coronary syndrome?"
    assert case["vitals"] == {
        "heart_rate": 112,  # the latest encounter's, not the older visit's 64
        "systolic_bp": 152,
        "diastolic_bp": 91,
        "respiratory_rate": 22,
        "temperature_c": 38.0,  # 100.4 °F
        "spo2": 93,
        "weight_kg": 81.6,  # 180 lb
    }
    assert case["labs"] == [
        {
            "name": "10839-9",
            "loinc": "10839-9",
            "status": "final",
            "value": 2.3,
            "unit": "ng/mL",
            "reference_range": "<= 0.04 ng/mL",
            "interpretation": "",
            "codings": [],
        }
    ]
    assert case["past_medical_history"] == ["Hypertension"]
    assert case["medications"] == [
        {
            "name": "metformin 500 mg tablet",
            "dose": "500 mg",
            "route": "oral",
            "frequency": "2 times per 1 d",
            "codings": [],
        }
    ]
    assert case["allergies"] == [
        {
            "substance": "penicillin",
            "reaction": "rash",
            "severity": "mild",
            "criticality": None,
            "codings": [],
        }
    ]
    assert body["fhir"]["ignored"] == {"Claim": 2, "Provenance": 1}
    assert body["fhir"]["skipped"] == {"Observation": 1}  # the older visit's heart rate
    assert body["fhir"]["encounter"] == "Encounter/enc-1"
    assert body["fhir"]["refused"] == []


def test_observations_of_other_encounters_are_neither_read_nor_validated() -> None:
    bundle = hand_made_bundle()
    old_hr = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "old-hr")
    old_hr["valueQuantity"]["value"] = "not a number"
    intake = case_input_from_bundle(bundle)
    assert intake.skipped == {"Observation": 1}
    assert intake.case_input.vitals is not None and intake.case_input.vitals.heart_rate == 112


def test_question_and_complaint_may_come_in_a_parameters_resource() -> None:
    bundle = hand_made_bundle()
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "Parameters",
                "parameter": [
                    {"name": "question", "valueString": "Which tests first?"},
                    {"name": "chief_complaint", "valueString": "Chest pain"},
                ],
            }
        }
    )
    intake = case_input_from_bundle(bundle)
    assert intake.case_input.question == "Which tests first?"
    assert intake.case_input.chief_complaint == "Chest pain"
    # ...and the request's own parameters win over the bundle's.
    overridden = case_input_from_bundle(bundle, CaseParameters(question="Admit or not?"))
    assert overridden.case_input.question == "Admit or not?"


def test_invalid_resource_is_400_naming_the_entry_and_field(ehr_client: APIClient) -> None:
    bundle = hand_made_bundle()
    bundle["entry"][3]["resource"]["valueQuantity"]["value"] = "fast"
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 400
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["entry", 3, "resource", "valueQuantity", "value"] in locs
    assert Case.objects.count() == 0


@pytest.mark.parametrize("fhir", [True, False])
def test_a_wrong_case_parameter_is_400_naming_it_on_any_submission(
    ehr_client: APIClient, fhir: bool
) -> None:
    # On a JSON submission the parameters are not read, but a wrong one is still a mistake.
    query = "?priority=asap&question=Admit%3F"
    if fhir:
        response = post_fhir(ehr_client, hand_made_bundle(), query)
    else:
        response = ehr_client.post(URL + query, load_case(), format="json")
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [["query", "priority"]]
    assert Case.objects.count() == 0


def test_implausible_value_is_400_pointing_at_the_observation(ehr_client: APIClient) -> None:
    bundle = hand_made_bundle()
    bundle["entry"][6]["resource"]["valueQuantity"] |= {"value": 98.6, "code": "Cel"}
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == [
        "entry",
        6,
        "resource",
        "valueQuantity",
        "value",
    ]


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda b: b.update(resourceType="Patient"), ["resourceType"]),
        (lambda b: b.update(type="document"), ["type"]),
        (lambda b: b.update(entry={}), ["entry"]),
        (lambda b: b["entry"].pop(0), ["entry"]),
        (
            lambda b: b["entry"][0]["resource"].pop("birthDate"),
            ["entry", 0, "resource", "birthDate"],
        ),
        (
            lambda b: b["entry"][1]["resource"].pop("resourceType"),
            ["entry", 1, "resource", "resourceType"],
        ),
    ],
    ids=["not-a-bundle", "document", "entry-not-list", "no-patient", "no-birthdate", "no-type"],
)
def test_unusable_bundles_are_400_with_a_location(ehr_client: APIClient, mutate, loc) -> None:  # type: ignore[no-untyped-def]
    bundle = hand_made_bundle()
    mutate(bundle)
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == loc


def test_fhir_submission_honours_idempotency(ehr_client: APIClient) -> None:
    bundle = hand_made_bundle()
    first = ehr_client.generic(
        "POST", URL, json.dumps(bundle), content_type=FHIR, HTTP_IDEMPOTENCY_KEY="fhir-1"
    )
    again = ehr_client.generic(
        "POST", URL, json.dumps(bundle), content_type=FHIR, HTTP_IDEMPOTENCY_KEY="fhir-1"
    )
    assert again.json()["id"] == first.json()["id"]
    other_question = ehr_client.generic(
        "POST",
        URL + "?question=Other",
        json.dumps(bundle),
        content_type=FHIR,
        HTTP_IDEMPOTENCY_KEY="fhir-1",
    )
    assert other_question.status_code == 409


def test_large_synthea_bundle_over_the_json_limit_is_accepted_as_fhir(
    ehr_client: APIClient, settings: Any
) -> None:
    settings.BEDSIDE_MAX_BODY_BYTES = 100_000  # a FHIR record is allowed more than a case
    bundle = json.loads(SYNTHEA[0].read_text())
    assert len(json.dumps(bundle)) > settings.BEDSIDE_MAX_BODY_BYTES
    assert post_fhir(ehr_client, bundle).status_code == 202


@pytest.mark.parametrize("path", HL7_BUNDLES, ids=lambda p: p.stem)
def test_hl7_example_bundles_are_a_case_or_a_400_never_a_500(
    ehr_client: APIClient, path: Path
) -> None:
    bundle = json.loads(path.read_text())
    response = post_fhir(ehr_client, copy.deepcopy(bundle))
    # 422: a readable Bundle with nothing clinical in it (a document index, a lone Patient).
    assert response.status_code in (202, 400, 422), response.content[:500]
    errors = response.json().get("errors", [])
    assert all(e["msg"] and isinstance(e["loc"], list) for e in errors)


def test_the_case_can_name_its_encounter(ehr_client: APIClient) -> None:
    response = post_fhir(ehr_client, hand_made_bundle(), "?encounter_id=enc-0")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["fhir"]["encounter"] == "Encounter/enc-0"
    assert body["input"]["vitals"]["heart_rate"] == 64  # the older visit's reading
    missing = post_fhir(ehr_client, hand_made_bundle(), "?encounter_id=nope")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["loc"] == ["query", "encounter_id"]


def test_without_encounters_the_latest_reading_of_each_test_is_used() -> None:
    bundle = hand_made_bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Encounter"]
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    by_id["old-hr"]["effectiveDateTime"] = "2025-01-01T09:05:00Z"
    old_trop = copy.deepcopy(by_id["trop"])
    old_trop |= {"id": "trop-old", "effectiveDateTime": "2025-12-01T00:00:00Z"}
    old_trop["valueQuantity"]["value"] = 0.01
    bundle["entry"].append({"resource": old_trop})
    intake = case_input_from_bundle(bundle)
    case = intake.case_input
    assert intake.encounter == ""
    assert case.vitals is not None and case.vitals.heart_rate == 112  # the latest reading
    assert case.vitals.temperature_c == 38.0
    assert [(lab.loinc, lab.value) for lab in case.labs] == [("10839-9", 2.3)]


def test_bench_fhir_inflates_a_record_and_reports_its_timing() -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("bench_fhir", "--megabytes", "1.5", "--runs", "1", stdout=out)
    report = out.getvalue()
    assert "1.5 MB" in report or "1.6 MB" in report
    assert "skipped {'Observation':" in report


# --- Empty cases (defect 4) and the record as it stood at the visit (defect 3) -------------


@pytest.mark.parametrize("with_encounter", [False, True])
def test_a_bundle_with_nothing_beyond_demographics_is_422_with_the_reason(
    ehr_client: APIClient, with_encounter: bool
) -> None:
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-01"}
    ]
    if with_encounter:
        checkup = _encounter() | {"type": [{"text": "Encounter for check up (procedure)"}]}
        del checkup["reasonCode"]
        resources.append(checkup)
    entries = [{"resource": r} for r in resources]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 422, response.json()
    [error] = response.json()["errors"]
    assert "no clinical content beyond demographics" in error["msg"]
    assert Case.objects.count() == 0
    # The same record with the clinician's complaint is a case.
    asked = post_fhir(ehr_client, bundle, "?chief_complaint=Dizzy%20on%20standing")
    assert asked.status_code == 202, asked.json()
    assert asked.json()["input"]["chief_complaint"] == "Dizzy on standing"


def _dated(resource: dict[str, Any], **dates: Any) -> dict[str, Any]:
    return {**resource, **dates, "subject": {"reference": "Patient/p1"}}


def visit_history_bundle() -> dict[str, Any]:
    """A bronchitis visit on 26 January (the illness ran from the 13th to the 27th), a
    check-up on 1 March, and items first recorded two weeks after the first visit."""
    active = {"coding": [{"code": "active"}]}
    resolved = {"coding": [{"code": "resolved"}]}
    visit = _encounter("visit", "2026-01-26T09:00:00Z")
    visit["period"]["end"] = "2026-01-26T09:30:00Z"
    del visit["reasonCode"]
    visit["class"]["code"] = "AMB"
    visit["type"] = [{"text": "Encounter for problem (procedure)"}]
    visit["diagnosis"] = [{"condition": {"reference": "Condition/bronchitis"}}]
    checkup = _encounter("checkup", "2026-03-01T09:00:00Z")
    del checkup["reasonCode"]
    checkup["type"] = [{"text": "Encounter for check up (procedure)"}]
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1961-06-15"},
        visit,
        checkup,
        _dated(
            {"resourceType": "Condition", "id": "bronchitis", "clinicalStatus": resolved},
            code={"text": "Acute bronchitis (disorder)"},
            onsetDateTime="2026-01-13T09:00:00Z",
            abatementDateTime="2026-01-27T09:00:00Z",
        ),
        _dated(
            {"resourceType": "Condition", "id": "htn", "clinicalStatus": active},
            code={"text": "Hypertension"},
            recordedDate="2026-02-09T09:00:00Z",
        ),
        _dated(
            {"resourceType": "MedicationRequest", "id": "amlo", "status": "active"},
            intent="order",
            medicationCodeableConcept={"text": "amlodipine 5 MG Oral Tablet"},
            authoredOn="2026-02-09T09:00:00Z",
        ),
        _dated(
            {"resourceType": "MedicationRequest", "id": "amox", "status": "completed"},
            intent="order",
            medicationCodeableConcept={"text": "amoxicillin 500 MG Oral Capsule"},
            authoredOn="2026-01-20T09:00:00Z",
            dispenseRequest={"validityPeriod": {"end": "2026-01-30T00:00:00Z"}},
        ),
        {
            "resourceType": "AllergyIntolerance",
            "id": "latex",
            "clinicalStatus": resolved,
            "code": {"text": "Latex"},
            "patient": {"reference": "Patient/p1"},
            "recordedDate": "2025-06-01T00:00:00Z",
            "reaction": [{"manifestation": [{"text": "Urticaria"}], "onset": "2026-01-26"}],
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "peanut",
            "clinicalStatus": active,
            "code": {"text": "Peanut"},
            "patient": {"reference": "Patient/p1"},
            "recordedDate": "2026-02-09T09:00:00Z",
        },
    ]
    entries = [{"resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def test_the_record_is_read_as_it_stood_at_the_chosen_encounter() -> None:
    intake = case_input_from_bundle(visit_history_bundle(), CaseParameters(encounter_id="visit"))
    case = intake.case_input
    assert case.past_medical_history == ["Acute bronchitis (disorder)"]
    assert [m.name for m in case.medications] == ["amoxicillin 500 MG Oral Capsule"]
    assert [(a.substance, a.reaction) for a in case.allergies] == [("Latex", "Urticaria")]
    assert case.chief_complaint == "Acute bronchitis (disorder)"


def test_the_latest_encounter_reads_the_record_as_it_stands_then() -> None:
    case = case_input_from_bundle(visit_history_bundle()).case_input
    assert case.past_medical_history == ["Hypertension"]
    assert [m.name for m in case.medications] == ["amlodipine 5 MG Oral Tablet"]
    assert [a.substance for a in case.allergies] == ["Peanut"]
    # A check-up with no reason or diagnosis is not itself the complaint.
    assert case.chief_complaint != "Encounter for check up (procedure)"
    assert "Encounter for check up" in case.chief_complaint


def test_conditions_recorded_at_the_encounter_are_its_complaint() -> None:
    bundle = visit_history_bundle()
    visit = bundle["entry"][1]["resource"]
    del visit["diagnosis"]
    bundle["entry"][3]["resource"]["encounter"] = {"reference": "Encounter/visit"}
    case = case_input_from_bundle(bundle, CaseParameters(encounter_id="visit")).case_input
    assert case.chief_complaint == "Acute bronchitis (disorder)"


# --- Codes, flags and units (defect 8) ------------------------------------------------------

SNOMED_URI = "http://snomed.info/sct"
RXNORM_URI = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_codings_criticality_and_lab_flags_travel_into_the_case(ehr_client: APIClient) -> None:
    bundle = hand_made_bundle()
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    by_id["htn"]["code"] = {
        "coding": [
            {"system": SNOMED_URI, "code": "38341003", "display": "Hypertension"},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"},
            {"system": "urn:local", "code": "HTN-7"},
        ],
        "text": "Hypertension",
    }
    by_id["met"]["code"]["coding"] = [{"system": RXNORM_URI, "code": "861007"}]
    by_id["pen"] |= {"criticality": "high"}
    by_id["pen"]["code"]["coding"] = [{"system": SNOMED_URI, "code": "764146007"}]
    inr = _quantity_obs("inr", "6301-6", 6.2, "{INR}", category="laboratory")
    inr["interpretation"] = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                    "code": "HH",
                }
            ]
        }
    ]
    bundle["entry"].append({"resource": inr})
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 202, response.json()
    case = response.json()["input"]
    assert case["past_medical_history_codings"] == [
        {
            "condition": "Hypertension",
            "codings": [
                {"system": SNOMED_URI, "code": "38341003", "display": "Hypertension"},
                {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": ""},
            ],
        }
    ]
    assert case["medications"][0]["codings"] == [
        {"system": RXNORM_URI, "code": "861007", "display": ""}
    ]
    assert case["allergies"][0]["criticality"] == "high"
    assert case["allergies"][0]["codings"][0]["code"] == "764146007"
    [flagged] = [lab for lab in case["labs"] if lab["loinc"] == "6301-6"]
    assert flagged["interpretation"] == "HH"
    assert flagged["value"] == 6.2


def test_rates_per_second_and_saturation_as_a_fraction_are_converted() -> None:
    bundle = hand_made_bundle()
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    by_id["hr"]["valueQuantity"] |= {"value": 1.5, "unit": "/s", "code": "/s"}
    by_id["spo2"]["valueQuantity"] |= {"value": 0.93, "unit": "1", "code": "1"}
    intake = case_input_from_bundle(bundle)
    assert intake.case_input.vitals.heart_rate == 90
    assert intake.case_input.vitals.spo2 == 93
    assert intake.refused == []


def test_a_unit_that_cannot_be_converted_is_refused_with_a_reason_not_dropped(
    ehr_client: APIClient,
) -> None:
    bundle = hand_made_bundle()
    index, resource = next(
        (i, e["resource"]) for i, e in enumerate(bundle["entry"]) if e["resource"]["id"] == "rr"
    )
    resource["valueQuantity"] |= {"unit": "L/min", "code": "L/min"}
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["input"]["vitals"]["respiratory_rate"] is None
    [refused] = body["fhir"]["refused"]
    assert refused["loc"] == ["entry", index, "resource", "valueQuantity", "code"]
    assert "respiratory_rate" in refused["msg"] and "L/min" in refused["msg"]


NO_VITALS = {
    "heart_rate": None,
    "systolic_bp": None,
    "diastolic_bp": None,
    "respiratory_rate": None,
    "temperature_c": None,
    "spo2": None,
    "weight_kg": None,
}


def test_vitals_are_one_shape_whichever_way_the_case_arrived(ehr_client: APIClient) -> None:
    as_json = load_case("case_chest_pain.json")
    as_json.pop("vitals", None)
    response = ehr_client.post(URL, as_json, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["input"]["vitals"] == NO_VITALS
    as_json["vitals"] = None
    response = ehr_client.post(URL, as_json, format="json")
    assert response.json()["input"]["vitals"] == NO_VITALS
    bundle = hand_made_bundle()
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if e["resource"]["resourceType"] != "Observation" or e["resource"]["id"] == "trop"
    ]
    response = post_fhir(ehr_client, bundle)
    assert response.status_code == 202, response.json()
    assert response.json()["input"]["vitals"] == NO_VITALS


def test_a_medication_named_only_by_its_reference_display_is_kept() -> None:
    bundle = hand_made_bundle()
    statement = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "ms")
    statement["medicationReference"] = {"reference": "Medication/elsewhere", "display": "aspirin"}
    case = case_input_from_bundle(bundle).case_input
    assert [m.name for m in case.medications] == ["aspirin"]


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.stem.split("_")[0])
def test_every_condition_active_at_the_synthea_visit_by_its_dates_is_in_the_case(
    path: Path,
) -> None:
    """Worked out from onset and abatement alone, whatever the condition's status today
    (viral sinusitis and an ankle sprain, each the reason for the visit, were dropped)."""
    bundle = json.loads(path.read_text())
    _, encounter = _latest_encounter(bundle)
    start = encounter["period"]["start"]
    end = encounter["period"].get("end", start)
    case = case_input_from_bundle(bundle).case_input
    for condition in _resources(bundle, "Condition"):
        onset = condition.get("onsetDateTime") or condition["recordedDate"]
        abated = condition.get("abatementDateTime")
        if onset <= end and (abated is None or abated > start):
            assert condition["code"]["text"] in case.past_medical_history

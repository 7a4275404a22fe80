"""CDS Hooks 2.0, tested with the spec's own example requests, responses and feedback:
discovery, a hook call that queues a case and answers at once, the finished assessment as
a card on the next call, feedback as clinician reviews, and the EHR's JWT."""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from clinical import lifecycle
from clinical.ehr.cds_hooks import SERVICES, SUMMARY_MAX, Feedback, HookRequest, HookResponse
from clinical.ehr.cds_hooks import cards as card_shapes
from clinical.models import Case, CaseStatus, CdsCard, ClinicianReview
from clinical.reasons import REASON_CODE_SYSTEM
from reasoning.early_warning import early_warning
from tests.clinical.conftest import ehr_token
from tests.fakes import FakeModelServer, assessment, choice, completion

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "public" / "cds-hooks" / "examples"
INDEX = json.loads((EXAMPLES / "INDEX.json").read_text())["examples"]
PATIENT_VIEW = "/cds-services/bedside-patient-view"
ORDER_SIGN = "/cds-services/bedside-order-sign"


# The spec's patient-view examples prefetch the Patient alone, a chart Bedside refuses (422:
# nothing to reason over beyond age and sex); the tests give that patient one condition.
CHART_CONDITION = {
    "resourceType": "Condition",
    "id": "chart-htn",
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "code": {"text": "Hypertension"},
    "subject": {"reference": "Patient/1288992"},
}


def example(name: str) -> dict[str, Any]:
    request: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    prefetch = request.get("prefetch")
    if (
        isinstance(prefetch, dict)
        and prefetch
        and all(
            isinstance(v, dict) and v.get("resourceType") == "Patient" for v in prefetch.values()
        )
    ):
        prefetch["conditions"] = {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": copy.deepcopy(CHART_CONDITION)}],
        }
    return request


def test_a_chart_holding_only_the_patient_is_422_with_the_reason(ehr_key: Any) -> None:
    # Every prefetch key answered, and answered empty: the chart holds only the patient.
    spec_example = with_prefetch(json.loads((EXAMPLES / "hl7spec__L219.json").read_text()))
    response = call(ehr_key, PATIENT_VIEW, spec_example)
    assert response.status_code == 422, response.json()
    [error] = response.json()["errors"]
    assert error["loc"][0] == "prefetch"
    assert "no clinical content beyond demographics" in error["msg"]
    assert Case.objects.count() == 0


def with_prefetch(request: dict[str, Any], service: str = "bedside-patient-view") -> dict[str, Any]:
    """The request with every prefetch key Bedside asks for that it lacks sent as an empty
    searchset (the EHR's answer when the patient has none), and no fhirServer: Bedside has
    nothing to fetch."""
    request = copy.deepcopy(request)
    request.pop("fhirServer", None)
    request.setdefault("prefetch", {})
    for key in SERVICES[service].prefetch:
        if key != "patient" and request["prefetch"].get(key) is None:
            request["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset"}
    return request


def patient_view() -> dict[str, Any]:
    """The spec's patient-view example (its Patient under its own key), prefetch complete."""
    return with_prefetch(example("hl7spec__L219.json"))


def examples_of(kind: str) -> list[str]:
    return [e["file"] for e in INDEX if e["kind"] == kind]


def token(key: Any, path: str, **claims: Any) -> str:
    return ehr_token(key, f"http://testserver{path}", **claims)


def call(key: Any, path: str, body: Any, **claims: Any) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token(key, path, **claims)}")
    return client.post(path, body, format="json")


def complete(case: Case, fake_model: FakeModelServer) -> None:
    # The answer must cite the case's facts (a patient-view case holds little but age and
    # sex), or the answer gate rightly refuses it.
    answer = assessment(
        "Community-acquired pneumonia",
        steps=["An elderly male; review of the record."],
        cites=["year-old"],
    )
    fake_model.push(completion([choice(i, json.dumps(answer)) for i in range(3)]))
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED


def test_discovery_lists_both_services_with_prefetch_templates(db: None) -> None:
    body = APIClient().get("/cds-services").json()
    hooks = {s["hook"]: s for s in body["services"]}
    assert set(hooks) == {"patient-view", "order-sign"}
    spec = example("hl7spec__L152.json")["services"][0]
    for service in hooks.values():
        assert set(spec) - {"title", "usageRequirements"} <= set(service)
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert all("{{context.patientId}}" in t for t in service["prefetch"].values())


def test_spec_patient_view_request_queues_a_case_and_answers_at_once(
    ehr_key: Any, fake_model: FakeModelServer
) -> None:
    request = patient_view()
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 200, response.json()
    cards = HookResponse.model_validate(response.json()).cards
    assert [c.indicator for c in cards] == ["info"]
    assert "running" in cards[0].summary
    case = Case.objects.get()
    born, today = date(1925, 12, 23), date.today()
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    assert case.input["patient"] == {"age_years": age, "sex": "male", "pregnant": None}
    assert case.external_id == "Patient/1288992"
    assert cards[0].links and cards[0].links[0].url.endswith(f"/{case.id}/")
    assert CdsCard.objects.get(uuid=cards[0].uuid).hook_instance == request["hookInstance"]

    # The EHR calls again (a new hookInstance) once the assessment is done: same case, and
    # now the answer itself as the card.
    complete(case, fake_model)
    again = copy.deepcopy(request) | {"hookInstance": str(uuid.uuid4())}
    answer = call(ehr_key, PATIENT_VIEW, again)
    assert answer.status_code == 200
    card = HookResponse.model_validate(answer.json()).cards[0]
    assert Case.objects.count() == 1
    assert card.summary.startswith("Bedside: Community-acquired pneumonia")
    assert len(card.summary) <= SUMMARY_MAX
    assert card.indicator in ("info", "warning", "critical")
    assert card.detail and "**Differential**" in card.detail
    assert fake_model.model in card.source.label and "not validated" in card.source.label
    assert card.overrideReasons and {r.system for r in card.overrideReasons} == {REASON_CODE_SYSTEM}
    assert AuditEvent.objects.filter(code="cds.hook_answered").count() == 2
    assert verify_chain() is None


def test_spec_order_sign_request_without_the_patient_is_412(ehr_key: Any) -> None:
    request = example("hl7spec__L306.json")
    del request["fhirServer"]
    response = call(ehr_key, ORDER_SIGN, request)
    assert response.status_code == 412
    locs = [e["loc"] for e in response.json()["errors"]]
    assert ["prefetch", "patient"] in locs and ["prefetch", "conditions"] in locs
    assert Case.objects.count() == 0


def test_order_sign_asks_about_the_orders_being_signed(ehr_key: Any) -> None:
    request = with_prefetch(example("hl7spec__L306.json"))
    request["prefetch"]["patient"] = {
        "resourceType": "Patient",
        "id": "1288992",
        "gender": "female",
        "birthDate": "1980-02-01",
    }
    # The spec's example spells its ids with non-breaking hyphens (U+2011), which FHIR ids
    # may not contain: Bedside names the field...
    refused = call(ehr_key, ORDER_SIGN, request)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["loc"] == [
        "prefetch",
        "orders",
        "entry",
        0,
        "resource",
        "id",
    ]
    # ...and takes the same request with plain hyphens.
    request = json.loads(json.dumps(request).replace("\\u2011", "-"))
    response = call(ehr_key, ORDER_SIGN, request)
    assert response.status_code == 200, response.json()
    case = Case.objects.get()
    assert "Amoxicillin" in case.input["question"]
    assert case.input["medications"][0]["name"].startswith("Metformin")


def test_an_order_sign_on_an_otherwise_empty_chart_assesses_the_orders(ehr_key: Any) -> None:
    request = json.loads(json.dumps(example("hl7spec__L306.json")).replace("\\u2011", "-"))
    request["prefetch"] = {
        "patient": {
            "resourceType": "Patient",
            "id": "1288992",
            "gender": "female",
            "birthDate": "1980-02-01",
        }
    }
    response = call(ehr_key, ORDER_SIGN, with_prefetch(request, "bedside-order-sign"))
    assert response.status_code == 200, response.json()
    assert Case.objects.get().input["chief_complaint"].startswith("Orders to sign: ")


def test_a_hook_sent_to_the_other_service_is_400(ehr_key: Any) -> None:
    response = call(ehr_key, ORDER_SIGN, patient_view())
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["hook"]


@pytest.mark.parametrize("name", ["hl7spec__L1435.json", "docs_spec__L1065.json"])
def test_spec_requests_without_a_patient_id_are_400(ehr_key: Any, name: str) -> None:
    response = call(ehr_key, PATIENT_VIEW, example(name))
    assert response.status_code == 400
    assert ["context", "patientId"] in [e["loc"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"iss": "https://elsewhere.example/"}, "issuer is not allowed"),
        ({"aud": "https://cds.example.org/cds-services/some-service"}, "Audience"),
        ({"exp": int(time.time()) - 3600}, "expired"),
    ],
    ids=["unknown-issuer", "wrong-audience", "expired"],
)
def test_jwt_is_checked(ehr_key: Any, claims: dict[str, Any], message: str) -> None:
    response = call(ehr_key, PATIENT_VIEW, patient_view(), **claims)
    assert response.status_code == 401
    assert message.lower() in response.json()["errors"][0]["msg"].lower()
    assert Case.objects.count() == 0


def test_a_jwt_is_used_once(ehr_key: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token(ehr_key, PATIENT_VIEW)}")
    assert client.post(PATIENT_VIEW, patient_view(), format="json").status_code == 200
    replay = client.post(PATIENT_VIEW, patient_view(), format="json")
    assert replay.status_code == 401
    assert "already used" in replay.json()["errors"][0]["msg"]


def test_jwt_signed_by_another_key_or_missing_is_refused(ehr_key: Any) -> None:
    stranger = ec.generate_private_key(ec.SECP384R1())
    assert call(stranger, PATIENT_VIEW, patient_view()).status_code == 401
    anonymous = APIClient().post(PATIENT_VIEW, patient_view(), format="json")
    assert anonymous.status_code == 401
    assert Case.objects.count() == 0


@pytest.fixture
def assessment_card(ehr_key: Any, fake_model: FakeModelServer) -> dict[str, Any]:
    request = patient_view()
    call(ehr_key, PATIENT_VIEW, request)
    complete(Case.objects.get(), fake_model)
    card: dict[str, Any] = call(ehr_key, PATIENT_VIEW, request).json()["cards"][0]
    return card


def test_spec_accepted_feedback_becomes_an_accept_review(
    ehr_key: Any, assessment_card: dict[str, Any]
) -> None:
    feedback = example("hl7spec__L1171.json")
    feedback["feedback"][0]["card"] = assessment_card["uuid"]
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 200, response.json()
    review = ClinicianReview.objects.get()
    assert response.json()["recorded"] == [{"card": assessment_card["uuid"], "review": review.pk}]
    assert review.decision == "accept" and review.source == "cds-hooks"
    assert review.card_uuid == assessment_card["uuid"]
    assert review.hook_instance == patient_view()["hookInstance"]
    assert AuditEvent.objects.filter(code="review.recorded").count() == 1


def test_override_with_our_reason_code_becomes_a_reject_review(
    ehr_key: Any, assessment_card: dict[str, Any]
) -> None:
    feedback = example("hl7spec__L1235.json")
    item = feedback["feedback"][0]
    item["card"] = assessment_card["uuid"]
    item["overrideReason"]["reason"] = {
        "system": REASON_CODE_SYSTEM,
        "code": "patient-contraindication",
    }
    assert call(ehr_key, PATIENT_VIEW + "/feedback", feedback).status_code == 200
    review = ClinicianReview.objects.get()
    assert review.decision == "reject"
    assert review.reason_code == "patient-contraindication"
    assert review.reason_text == "A comment entered by the clinician."


def test_override_with_a_reason_not_offered_is_400(
    ehr_key: Any, assessment_card: dict[str, Any]
) -> None:
    feedback = example("hl7spec__L1235.json")  # its reason is from example.com's system
    feedback["feedback"][0]["card"] = assessment_card["uuid"]
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["feedback", 0, "overrideReason", "reason"]
    assert not ClinicianReview.objects.exists()


def test_override_without_a_reason_is_audited_not_a_review(
    ehr_key: Any, assessment_card: dict[str, Any]
) -> None:
    feedback = example("hl7spec__L1203.json")
    feedback["feedback"][0]["card"] = assessment_card["uuid"]
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 200
    assert response.json()["recorded"][0]["review"] is None
    assert not ClinicianReview.objects.exists()
    assert AuditEvent.objects.get(code="cds.feedback_noted").details["outcome"] == "overridden"


def test_feedback_on_an_unknown_card_is_400(ehr_key: Any) -> None:
    response = call(ehr_key, PATIENT_VIEW + "/feedback", example("hl7spec__L1171.json"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["feedback", 0, "card"]


@pytest.mark.parametrize("name", examples_of("feedback"))
def test_spec_feedback_examples_fit_our_feedback_shape(name: str) -> None:
    assert Feedback.model_validate(example(name)).feedback


@pytest.mark.parametrize("name", examples_of("service_request"))
def test_spec_requests_fit_our_request_shape_or_lack_the_patient(name: str) -> None:
    data = example(name)
    if "patientId" in data["context"]:
        assert HookRequest.model_validate(data).hookInstance
    else:
        with pytest.raises(ValidationError):
            HookRequest.model_validate(data)


@pytest.mark.parametrize("name", examples_of("service_response"))
def test_our_card_shape_accepts_the_spec_responses_and_catches_their_errors(name: str) -> None:
    data = example(name)
    cards = data["cards"]
    broken = [c for c in cards if c.get("indicator") not in ("info", "warning", "critical")] + [
        c for c in cards for link in c.get("links", []) if "autolaunchable" in link
    ]
    if not broken:
        assert HookResponse.model_validate(data).cards is not None
    else:
        # The spec's own examples carry cards without their required indicator and a 1.0
        # indicator ('success'): refused, as they should be.
        with pytest.raises(ValidationError):
            HookResponse.model_validate(data)


def test_the_charts_open_encounter_is_the_case_not_the_latest(ehr_key: Any) -> None:
    request = patient_view()  # context.encounterId is "89284"
    encounter = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "subject": {"reference": "Patient/1288992"},
    }
    request["prefetch"]["encounters"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": encounter
                | {
                    "id": "89284",
                    "class": {"code": "EMER"},
                    "period": {"start": "2026-01-01T08:00:00Z"},
                }
            },
            {
                "resource": encounter
                | {
                    "id": "later",
                    "class": {"code": "AMB"},
                    "period": {"start": "2026-02-01T08:00:00Z"},
                }
            },
        ],
    }
    assert call(ehr_key, PATIENT_VIEW, request).status_code == 200
    assert Case.objects.get().input["setting"] == "emergency"


def test_a_failed_assessment_is_queued_again_a_few_times_then_reported(ehr_key: Any) -> None:
    request = patient_view()
    indicators = []
    for _ in range(4):
        cards = call(ehr_key, PATIENT_VIEW, request).json()["cards"]
        indicators.append(cards[0]["indicator"])
        Case.objects.update(status=CaseStatus.FAILED)  # the model server gave up on it
    # Three assessments were tried; the fourth call reports the failure instead of a fourth.
    assert Case.objects.count() == 3
    assert indicators == ["info", "info", "info", "warning"]


def test_an_ehrs_first_call_records_one_role_change_by_cds_hooks(ehr_key: Any) -> None:
    response = call(ehr_key, PATIENT_VIEW, patient_view())
    assert response.status_code == 200, response.json()
    changes = list(AuditEvent.objects.filter(code="role.changed"))
    assert len(changes) == 1, [(e.actor_label, e.details) for e in changes]
    assert changes[0].actor_label.startswith("cds-hooks:")
    assert changes[0].details["granted"] == ["integration"]
    assert verify_chain() is None


# --- early-warning scores and criticality ----------------------------------------------------

PE_VITALS = {"heart_rate": 118, "respiratory_rate": 26, "spo2": 89}
NORMAL_VITALS = {"heart_rate": 72, "respiratory_rate": 16, "spo2": 98, "systolic_bp": 125}


def _case(vitals: dict[str, Any] | None, status: str = CaseStatus.COMPLETED) -> Case:
    data = {
        "patient": {"age_years": 71, "sex": "female"},
        "chief_complaint": "Breathless after a long flight",
        "question": "What is the most likely diagnosis?",
        "vitals": vitals,
    }
    return Case(input=data, status=status)


def _run(red_flags: list[str], confidence: float = 0.9) -> Any:
    answer = assessment("Pulmonary embolism")
    answer["red_flags"] = [{"flag": f, "based_on": ["SpO₂ 89 %"]} for f in red_flags]
    return SimpleNamespace(
        assessment=answer, confidence=confidence, confidence_method="m", model_name="fake"
    )


def _scores(vitals: dict[str, Any]) -> list[Any]:
    return early_warning(_case(vitals).input)["scores"]


def test_card_indicator_is_critical_from_a_high_score_alone() -> None:
    assert card_shapes.card_indicator(_scores(PE_VITALS), []) == "critical"
    assert card_shapes.card_indicator(_scores(NORMAL_VITALS), []) == "info"
    assert card_shapes.card_indicator(_scores(NORMAL_VITALS), [], otherwise="warning") == "warning"


@pytest.mark.parametrize("junk", ["True", "False", "High", "likely", "},{", "—"])
def test_a_junk_red_flag_does_not_make_a_card_critical(junk: str) -> None:
    assert card_shapes.card_indicator(_scores(NORMAL_VITALS), [{"flag": junk}]) == "info"
    card = card_shapes.assessment_card(_case(NORMAL_VITALS), _run([junk, "high"]), "http://x/", "u")
    assert card["indicator"] == "info"
    assert "**Red flags**" not in card["detail"]


def test_a_real_red_flag_still_makes_a_card_critical() -> None:
    assert card_shapes.card_indicator([], [{"flag": "Hypoxia"}]) == "critical"
    card = card_shapes.assessment_card(_case(NORMAL_VITALS), _run(["Hypoxia"]), "http://x/", "u")
    assert card["indicator"] == "critical"


def test_a_high_score_with_no_red_flag_says_so_in_a_critical_card() -> None:
    card = card_shapes.assessment_card(_case(PE_VITALS), _run(["True"]), "http://x/", "u")
    HookResponse.model_validate({"cards": [card]})
    assert card["indicator"] == "critical"
    assert card["summary"] == (
        "Bedside: NEWS2 8 (high): the model's answer raises no red flag. Assess the patient now."
    )
    assert card["detail"].startswith(card["summary"].removeprefix("Bedside: "))
    assert "**Early-warning scores**" in card["detail"]
    assert (
        "- NEWS2 8 (high risk); partial, not recorded: Systolic BP, Temperature" in (card["detail"])
    )
    assert "- qSOFA 1 (low risk)" in card["detail"]
    assert "- Shock index not computed" in card["detail"]


def test_a_high_score_with_a_red_flag_leads_the_summary_without_the_warning() -> None:
    card = card_shapes.assessment_card(_case(PE_VITALS), _run(["Hypoxia"]), "http://x/", "u")
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Bedside: NEWS2 8 (high); Pulmonary embolism")
    assert "raises no red flag" not in card["detail"]


def test_status_cards_carry_the_scores_and_a_high_one_is_critical() -> None:
    running = card_shapes.status_card(_case(PE_VITALS, CaseStatus.QUEUED), "http://x/", "u")
    HookResponse.model_validate({"cards": [running]})
    assert running["indicator"] == "critical"
    assert "no answer from the model yet. Assess the patient now." in running["summary"]
    failed = card_shapes.status_card(_case(PE_VITALS, CaseStatus.FAILED), "http://x/", "u")
    assert failed["indicator"] == "critical"
    assert "the model gave no answer" in failed["summary"]
    quiet = card_shapes.status_card(_case(None, CaseStatus.QUEUED), "http://x/", "u")
    assert quiet["indicator"] == "info" and "- No vital signs recorded" in quiet["detail"]


# --- fields Bedside does not know, token lifetime ------------------------------------------


def test_unknown_request_fields_are_ignored_as_cds_hooks_requires(ehr_key: Any) -> None:
    request = patient_view()
    request["futureField"] = {"from": "a later CDS Hooks version"}
    request["fhirAuthorization"] = {
        "access_token": "some-opaque-fhir-access-token",
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "user/Patient.read user/Observation.read",
        "subject": "cds-service4",
        "id_token": "an.openid.token",
    }
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 200, response.json()
    assert Case.objects.count() == 1


def test_known_request_fields_stay_strict(ehr_key: Any) -> None:
    request = patient_view()
    request["hookInstance"] = 42
    request["unknown"] = "ignored"
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [["hookInstance"]]


def test_unknown_feedback_fields_are_ignored(ehr_key: Any, assessment_card: dict[str, Any]) -> None:
    feedback = example("hl7spec__L1171.json") | {"extension": {"x": 1}}
    feedback["feedback"][0] |= {"card": assessment_card["uuid"], "someVendorField": True}
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 200, response.json()
    assert ClinicianReview.objects.count() == 1


def test_a_jwt_living_longer_than_five_minutes_is_refused(ehr_key: Any) -> None:
    week = int(time.time()) + 7 * 24 * 3600
    response = call(ehr_key, PATIENT_VIEW, patient_view(), exp=week)
    assert response.status_code == 401
    assert "5 minutes" in response.json()["errors"][0]["msg"]
    assert Case.objects.count() == 0


def test_a_jwt_expiring_in_five_minutes_and_a_little_clock_skew_is_taken(ehr_key: Any) -> None:
    soon = int(time.time()) + 300 + 20
    response = call(ehr_key, PATIENT_VIEW, patient_view(), exp=soon)
    assert response.status_code == 200, response.json()

"""The answer gate: junk refused, duplicates merged (by text and by code), findings without
a verified cited fact dropped, a sample whose top diagnosis fails not usable; a case whose
samples are all junk fails with the reasons, and the API shows only checked content."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from clinical import lifecycle
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseInput
from clinical.services import case_rerun, case_submit
from reasoning import gate
from reasoning.facts import case_facts
from reasoning.models import ReasoningRun
from reasoning.parsing import TraceSource, parse_choice
from reasoning.protocol import Choice
from reasoning.schemas import Assessment, CheckedAssessment
from tests.conftest import client_for
from tests.factories import TEST_ACTOR, load_case
from tests.fakes import FakeModelServer, assessment, choice, completion

CASE = load_case()
FACTS = case_facts(CASE)
ID = {f.text: f.id for f in FACTS}
CHEST, TROP, HR = (
    ID["Crushing chest pain for 40 minutes"],
    ID["Troponin I 2.3 ng/mL (ref <0.04)"],
    ID["Heart rate 110 /min"],
)


def answer(**parts: Any) -> Assessment:
    base: dict[str, Any] = {
        "reasoning_steps": ["Chest pain with raised troponin."],
        "differential": [
            {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": [CHEST, TROP]}
        ],
        "next_steps": [{"action": "12-lead ECG", "based_on": [CHEST]}],
        "red_flags": [{"flag": "Raised troponin", "based_on": [TROP]}],
        "stated_confidence": 0.6,
    }
    return Assessment.model_validate({**base, **parts})


# The answers seen on real cases (issue 15).
MILDRED = {
    "reasoning_steps": ["1. ]{"],
    "differential": [
        {"diagnosis": "mildred-9-19-20-11-20", "likelihood": "high", "supporting_facts": []}
    ]
    * 5,
    "next_steps": [{"action": "add", "based_on": []}] * 5,
    "red_flags": [{"flag": "high", "based_on": []}] * 4,
    "stated_confidence": 0.5,
}
PHARMACOLOGY = {
    "reasoning_steps": ["Pharmacology"],
    "differential": [
        {"diagnosis": "Pharmacology", "likelihood": "high", "supporting_facts": [",", "},{"]}
    ]
    * 5,
    "next_steps": [],
    "red_flags": [{"flag": f, "based_on": [TROP]} for f in ("True", "False", "High", "Low")],
    "stated_confidence": 0.9,
}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("mildred-9-19-20-11-20", "diagnosis"),
        ("Pharmacology", "diagnosis"),
        (",", "diagnosis"),
        ("},{", "diagnosis"),
        ("True", "red flag"),
        ("False", "red flag"),
        ("High", "red flag"),
        ("moderate", "red flag"),
        ("add", "step"),
        ("12345", "step"),
        ("Chest discomfort of uncertain cause", "diagnosis"),  # matches no clinical term
    ],
)
def test_junk_from_real_cases_is_refused(text: str, kind: str) -> None:
    assert gate.junk_reason(text, kind=kind)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Acute myocardial infarction", "diagnosis"),
        ("Pulmonary embolism", "diagnosis"),
        ("12-lead ECG", "step"),
        ("ECG", "step"),
        ("Raised troponin", "red flag"),
        ("SpO2 89 % on air", "red flag"),
    ],
)
def test_clinical_findings_pass_the_junk_check(text: str, kind: str) -> None:
    assert gate.junk_reason(text, kind=kind) == ""


def test_the_mildred_and_pharmacology_answers_are_not_usable() -> None:
    for raw in (MILDRED, PHARMACOLOGY):
        result = gate.check(Assessment.model_validate(raw), FACTS)
        assert not result.usable
        assert result.reasons[0].startswith("top diagnosis 1")
        assert result.error.startswith("not usable: top diagnosis 1")
    pharmacology = gate.check(Assessment.model_validate(PHARMACOLOGY), FACTS)
    assert any("cited ',', which is not a case fact" in r for r in pharmacology.reasons)
    assert (pharmacology.cited, pharmacology.verified) == (14, 4)


def test_verified_answer_passes_with_facts_as_id_text_path_and_coding() -> None:
    result = gate.check(answer(), FACTS)
    assert result.usable and result.reasons == []
    checked = result.checked
    assert checked is not None
    top = checked.differential[0]
    assert top.coding is not None and top.coding.code == "I21.9" and top.coding.category == "I21"
    assert [f.model_dump() for f in top.supporting_facts] == [
        {"id": CHEST, "text": "Crushing chest pain for 40 minutes", "path": "chief_complaint"},
        {"id": TROP, "text": "Troponin I 2.3 ng/mL (ref <0.04)", "path": "labs[0]"},
    ]
    assert checked.cited_paths() == {"chief_complaint", "labs[0]"}
    assert (result.cited, result.verified, result.diagnoses, result.coded) == (4, 4, 1, 1)


def test_invented_citation_cannot_pass_even_when_the_server_ignored_the_enum() -> None:
    invented = answer(
        differential=[
            {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": ["ST elevation"]}
        ],
        red_flags=[{"flag": "Raised troponin", "based_on": ["Troponin I 9.9", "F99"]}],
    )
    result = gate.check(invented, FACTS)
    assert not result.usable
    assert "unsupported" in result.reasons[0]
    assert any("'F99', which is not a case fact" in r for r in result.reasons)
    # A fact written out in full (no enum) is still one of the case's facts.
    written = answer(
        differential=[
            {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": ["SpO2 94 %"]}
        ]
    )
    checked = gate.check(written, FACTS).checked
    assert checked is not None
    assert checked.differential[0].supporting_facts[0].path == "vitals.spo2"


def test_unsupported_lower_items_are_dropped_and_recorded() -> None:
    result = gate.check(
        answer(
            differential=[
                {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": [CHEST]},
                {"diagnosis": "Pericarditis", "likelihood": "low", "supporting_facts": ["rub"]},
            ],
            next_steps=[
                {"action": "12-lead ECG", "based_on": [CHEST]},
                {"action": "Chest X-ray", "based_on": []},
            ],
        ),
        FACTS,
    )
    assert result.checked is not None
    assert [d.diagnosis for d in result.checked.differential] == ["Acute MI"]
    assert [s.action for s in result.checked.next_steps] == ["12-lead ECG"]
    assert any("'Pericarditis': unsupported" in r for r in result.reasons)
    assert any("'Chest X-ray': unsupported" in r for r in result.reasons)


def test_duplicates_merge_by_text_and_by_code() -> None:
    result = gate.check(
        answer(
            differential=[
                {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": [CHEST]},
                {"diagnosis": "acute mi.", "likelihood": "moderate", "supporting_facts": [TROP]},
                # Other words, the same ICD-10-CM code: the same diagnosis.
                {
                    "diagnosis": "Heart attack",
                    "likelihood": "low",
                    "supporting_facts": [HR],
                },
                {"diagnosis": "Pulmonary embolism", "likelihood": "low", "supporting_facts": [HR]},
            ],
            red_flags=[
                {"flag": "Raised troponin", "based_on": [TROP]},
                {"flag": "raised troponin", "based_on": [TROP]},
            ],
        ),
        FACTS,
    )
    checked = result.checked
    assert checked is not None
    assert [d.diagnosis for d in checked.differential] == ["Acute MI", "Pulmonary embolism"]
    assert [f.id for f in checked.differential[0].supporting_facts] == [CHEST, TROP, HR]
    assert len(checked.red_flags) == 1
    assert sum("merged" in r for r in result.reasons) == 3


def test_sample_refused_by_the_gate_keeps_its_trace_and_reasons_in_its_summary() -> None:
    sample = parse_choice(Choice.model_validate(choice(0, json.dumps(MILDRED))), facts=FACTS)
    assert not sample.usable and sample.checked is None
    assert sample.error.startswith("not usable: top diagnosis 1 'mildred-9-19-20-11-20'")
    assert sample.trace_source == TraceSource.ANSWER_STEPS  # kept for the auditor
    summary = sample.summary()
    assert summary["usable"] is False
    reasons = [str(r) for r in summary["gate_reasons"]]  # type: ignore[attr-defined]
    assert any("'add': a filler word" in r for r in reasons)
    assert any("'high': a likelihood word" in r for r in reasons)


def test_case_whose_samples_are_all_junk_fails_with_the_reasons_and_can_be_rerun(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = case_submit(
        case_input=CaseInput.model_validate(CASE), actor=TEST_ACTOR, submitted_by=alice
    )
    fake_model.push(
        completion(
            [choice(i, json.dumps(raw)) for i, raw in enumerate([MILDRED, PHARMACOLOGY] * 2)]
        )
    )
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    failed = ReasoningRun.objects.get(case=case)
    assert failed.failure_reason.startswith("no usable sample (sample 0: not usable: top")
    assert "mildred-9-19-20-11-20" in failed.failure_reason
    assert all(s["gate_reasons"] for s in failed.samples)
    assert failed.assessment is None

    page = client_for(alice).get(f"/cases/{case.id}/")
    assert b"mildred-9-19-20-11-20" in page.content  # the page says what happened
    assert b"Run again" in page.content or b"rerun" in page.content

    case_rerun(case=case, actor=TEST_ACTOR)
    lifecycle.case_run(case_id=case.id)  # the fake's default answer cites the case's facts
    assert Case.objects.get(pk=case.pk).status == CaseStatus.COMPLETED


def test_server_ignoring_the_enum_gets_no_invented_fact_past_the_gate(
    alice: User, fake_model: FakeModelServer
) -> None:
    fake_model.ignore_enum = True  # citations come back as written: "chest pain"
    case = case_submit(
        case_input=CaseInput.model_validate(CASE), actor=TEST_ACTOR, submitted_by=alice
    )
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    assert "unsupported" in case.status_detail


def test_api_result_holds_only_verified_items_with_id_text_path_facts(
    alice: User, fake_model: FakeModelServer
) -> None:
    raw = assessment("Acute myocardial infarction")
    raw["differential"].append(
        {"diagnosis": "Aortic dissection", "likelihood": "low", "supporting_facts": ["back pain"]}
    )
    bad = json.dumps(MILDRED)
    fake_model.push(
        completion([choice(0, json.dumps(raw)), choice(1, json.dumps(raw)), choice(2, bad)])
    )
    case = case_submit(
        case_input=CaseInput.model_validate(CASE), actor=TEST_ACTOR, submitted_by=alice
    )
    lifecycle.case_run(case_id=case.id)
    body = client_for(alice).get(f"/api/v1/cases/{case.id}/").json()
    assert body["status"] == "completed"
    result = body["result"]
    diagnoses = [d["diagnosis"] for d in result["assessment"]["differential"]]
    assert diagnoses == ["Acute myocardial infarction", "Pulmonary embolism"]  # no dissection
    paths = {
        f["path"]: f for d in result["assessment"]["differential"] for f in d["supporting_facts"]
    }
    assert paths["chief_complaint"] == {
        "id": CHEST,
        "text": "Crushing chest pain for 40 minutes",
        "path": "chief_complaint",
    }
    assert paths["vitals.heart_rate"]["id"] == HR
    assert result["assessment"]["differential"][0]["coding"]["code"] == "I21.9"
    assert result["assessment"]["legacy"] is False
    assert (result["samples_usable"], result["samples_total"]) == (2, 3)
    assert result["unusable_reasons"][0].startswith("sample 2: not usable: top diagnosis 1")
    assert "'back pain', which is not a case fact" in " ".join(result["samples"][0]["gate_reasons"])


def test_old_runs_stored_in_the_old_shape_still_read_as_legacy(completed_case: Case) -> None:
    old = {
        "reasoning_steps": ["Chest pain."],
        "differential": [
            {"diagnosis": "Acute MI", "likelihood": "high", "supporting_facts": ["chest pain"]}
        ],
        "next_steps": [{"action": "ECG", "based_on": ["chest pain"]}],
        "red_flags": [],
        "stated_confidence": 0.8,
    }
    # Runs are append-only: a later run of the case, stored the old way, is the one shown.
    run = ReasoningRun.objects.get(case=completed_case)
    run.pk = None
    run.assessment = old
    run.save()
    checked = CheckedAssessment.stored(run.assessment)
    assert checked is not None and checked.legacy
    assert checked.differential[0].supporting_facts[0].text == "chest pain"
    assert checked.differential[0].supporting_facts[0].path == ""
    body = client_for(completed_case.submitted_by).get(f"/api/v1/cases/{completed_case.id}/")
    assert body.status_code == 200
    assert body.json()["result"]["assessment"]["legacy"] is True
    page = client_for(completed_case.submitted_by).get(f"/cases/{completed_case.id}/")
    assert page.status_code == 200 and b"chest pain" in page.content
    assert b"not checked" in page.content


def test_rerun_over_the_api_only_for_failed_cases(
    completed_case: Case, alice: User, bob: User
) -> None:
    from tests.conftest import client_for

    url = f"/api/v1/cases/{completed_case.id}/rerun/"
    response = client_for(alice).post(url)
    assert response.status_code == 409
    assert response.json()["errors"][0]["loc"] == ["case", "status"]
    assert client_for(bob).post(url).status_code == 404  # not bob's case
    Case.objects.filter(pk=completed_case.pk).update(status=CaseStatus.FAILED)
    response = client_for(alice).post(url)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["status_detail"] == "re-run requested by alice"


def test_the_case_page_marks_the_facts_the_checked_answer_cites(
    alice: User, fake_model: FakeModelServer
) -> None:
    raw = assessment("Acute myocardial infarction")
    fake_model.push(completion([choice(i, json.dumps(raw)) for i in range(3)]))
    case = case_submit(
        case_input=CaseInput.model_validate(CASE), actor=TEST_ACTOR, submitted_by=alice
    )
    lifecycle.case_run(case_id=case.id)
    checked = case.runs.get().assessment
    assert checked is not None
    cited = {f["path"] for d in checked["differential"] for f in d["supporting_facts"]}
    assert {"chief_complaint", "vitals.heart_rate"} <= cited
    client = Client()
    client.force_login(alice)
    html = client.get(f"/cases/{case.id}/").content.decode()
    assert f"<mark>{CASE['chief_complaint']}</mark>" in html
    assert f"<mark>Heart rate {CASE['vitals']['heart_rate']} beats/min</mark>" in html

"""An answer that ignores the case is a recorded failure, like invalid JSON; one that rests
on the case passes, with the share of its cited facts that match the case kept."""

from __future__ import annotations

import json

from django.contrib.auth.models import User

from clinical import lifecycle
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseInput
from clinical.services import case_rerun, case_submit
from reasoning.grounding import CaseFacts, check
from reasoning.models import ReasoningRun
from reasoning.parsing import TraceSource, parse_choice
from reasoning.protocol import Choice
from tests.factories import TEST_ACTOR, load_case
from tests.fakes import FakeModelServer, assessment, choice, completion

CASE = load_case()
FACTS = CaseFacts.of(CASE)

UNRELATED = {
    "reasoning_steps": ["The child tugs at the ear.", "Otoscopy would show a bulging drum."],
    "differential": [
        {
            "diagnosis": "Otitis media",
            "likelihood": "high",
            "supporting_facts": ["ear tugging", "bulging tympanic membrane"],
        }
    ],
    "next_steps": [{"action": "Amoxicillin", "based_on": ["bulging tympanic membrane"]}],
    "red_flags": [],
    "stated_confidence": 0.9,
}


def test_case_facts_hold_values_vital_words_but_not_the_question() -> None:
    assert FACTS.matches("crushing pain in the chest")
    assert FACTS.matches("troponin raised")
    assert FACTS.matches("tachycardia")  # a heart rate was measured
    assert FACTS.matches("radiating to the arm")  # stems: radia-tes / radia-ting
    assert not FACTS.matches("what should be done next")  # the question is no finding
    assert not FACTS.matches("bulging tympanic membrane")


def test_check_counts_matching_facts_and_fails_only_when_nothing_matches() -> None:
    grounded = check(cited_facts=["chest pain", "ear ache"], steps=[], facts=FACTS)
    assert (grounded.cited_facts, grounded.matching_facts, grounded.error) == (2, 1, "")
    assert grounded.share == 0.5
    ignored = check(cited_facts=["ear ache"], steps=["The ear is red."], facts=FACTS)
    assert ignored.error.startswith("ignores the case")


def test_sample_that_ignores_the_case_is_a_recorded_failure_with_its_trace() -> None:
    sample = parse_choice(Choice.model_validate(choice(0, json.dumps(UNRELATED))), facts=FACTS)
    assert sample.assessment is None
    assert sample.error.startswith("ignores the case")
    assert sample.trace_source == TraceSource.ANSWER_STEPS  # kept for the auditor
    assert "ear" in sample.trace


def test_grounded_sample_passes_with_its_share() -> None:
    answer = json.dumps(assessment("Acute coronary syndrome"))
    sample = parse_choice(Choice.model_validate(choice(0, answer)), facts=FACTS)
    assert sample.assessment is not None
    assert sample.grounded_share == 1.0
    assert sample.summary()["grounded_share"] == 1.0


def test_run_where_every_sample_ignores_the_case_fails_and_can_be_rerun(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = case_submit(
        case_input=CaseInput.model_validate(CASE), actor=TEST_ACTOR, submitted_by=alice
    )
    fake_model.push(completion([choice(i, json.dumps(UNRELATED)) for i in range(3)]))
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    failed = ReasoningRun.objects.get(case=case)
    assert "ignores the case" in failed.failure_reason
    assert [s["error"][:16] for s in failed.samples] == ["ignores the case"] * 3

    case_rerun(case=case, actor=TEST_ACTOR)
    assert Case.objects.get(pk=case.pk).status == CaseStatus.QUEUED
    lifecycle.case_run(case_id=case.id)  # the fake's default answer rests on the case
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED
    assert ReasoningRun.objects.filter(case=case).count() == 2  # the failed run stays


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

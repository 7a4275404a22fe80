"""The auditors' case list reads CaseFacts, which PostgreSQL triggers keep in step with
cases, runs and reviews."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from audit.models import CaseFacts
from clinical.models import Case
from tests.factories import reviewed_case, submitted_case


def test_facts_follow_the_case_its_run_and_its_latest_review(
    completed_case: Case, alice: User
) -> None:
    run = completed_case.runs.get()
    facts = CaseFacts.objects.get(case_id=completed_case.id)
    assert (facts.status, facts.submitter, facts.system) == ("completed", "alice", "person")
    assert (facts.run_id, facts.model_revision, facts.confidence) == (
        run.pk,
        run.model_revision,
        run.confidence,
    )
    assert facts.decision is None
    for decision in ("accept", "modify"):
        body = {"decision": decision}
        if decision == "modify":
            body |= {
                "reason_code": "cds-not-applicable",
                "reason_text": "different plan",
                "differential": [{"diagnosis": "Unstable angina", "likelihood": "high"}],
                "plan": ["serial troponins"],
            }
        reviewed_case(completed_case, alice, **body)
    facts.refresh_from_db()
    assert facts.decision == "modify"  # the latest review wins


def test_cases_from_an_integration_key_are_marked_api(
    ehr_client: object, integration_key: object
) -> None:
    from tests.factories import load_case

    response = ehr_client.post("/api/v1/cases/", load_case(), format="json")  # type: ignore[attr-defined]
    assert response.status_code == 202
    facts = CaseFacts.objects.get(case_id=response.json()["id"])
    assert (facts.system, facts.status, facts.submitter) == ("api", "queued", "key:ehr-test")


def test_a_case_cannot_be_deleted_so_its_facts_stay(alice: User) -> None:
    """Cases are never deleted (clinical migration 0007, issue 17): not even a queued
    case nothing else refers to."""
    case = submitted_case(alice)
    assert CaseFacts.objects.filter(case_id=case.id).exists()
    with (
        pytest.raises(IntegrityError, match="patient records are never deleted"),
        transaction.atomic(),
    ):
        Case.objects.filter(id=case.id).delete()
    assert Case.objects.filter(id=case.id).exists()
    assert CaseFacts.objects.filter(case_id=case.id).exists()

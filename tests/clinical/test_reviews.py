"""Clinician reviews: accept / modify / reject with CDS Hooks reason codes, append-only,
the latest one shown on the case, each one audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from clinical.models import Case, ClinicianReview
from tests.conftest import client_for
from tests.factories import submitted_case


def url(case: Case) -> str:
    return f"/api/v1/cases/{case.id}/reviews/"


def test_accept_needs_no_reason_and_shows_as_latest(completed_case: Case, alice: User) -> None:
    client = client_for(alice)
    response = client.post(url(completed_case), {"decision": "accept"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["decision"] == "accept"
    detail = client.get(f"/api/v1/cases/{completed_case.id}/").json()
    assert detail["latest_review"]["decision"] == "accept"
    assert detail["latest_review"]["reviewer"] == "alice"


def test_modify_keeps_the_clinicians_own_plan_and_supersedes(
    completed_case: Case, alice: User
) -> None:
    client = client_for(alice)
    client.post(url(completed_case), {"decision": "accept"}, format="json")
    body = {
        "decision": "modify",
        "reason_code": "need-more-info",
        "reason_text": "Awaiting repeat troponin before committing.",
        "differential": [{"diagnosis": "Unstable angina", "likelihood": "high"}],
        "plan": ["Repeat troponin in 3 hours"],
    }
    response = client.post(url(completed_case), body, format="json")
    assert response.status_code == 201, response.json()
    saved = response.json()
    assert saved["modified_assessment"]["plan"] == ["Repeat troponin in 3 hours"]
    assert saved["reason_display"].startswith("Could not address recommended action")
    reviews = client.get(url(completed_case)).json()["results"]
    assert [r["decision"] for r in reviews] == ["modify", "accept"]
    assert ClinicianReview.objects.filter(case=completed_case).count() == 2
    detail = client.get(f"/api/v1/cases/{completed_case.id}/").json()
    assert detail["latest_review"]["decision"] == "modify"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"decision": "reject", "reason_text": "wrong"}, ["reason_code"]),
        ({"decision": "reject", "reason_code": "expert-contradicts"}, ["reason_text"]),
        ({"decision": "reject", "reason_code": "made-up", "reason_text": "x"}, ["reason_code"]),
        ({"decision": "maybe"}, ["decision"]),
        ({"decision": "accept", "plan": ["do more"]}, ["plan"]),
        ({"decision": "modify", "reason_code": "expert-contradicts", "reason_text": "x"}, []),
        ({"decision": "accept", "surprise": 1}, ["surprise"]),
    ],
)
def test_invalid_review_is_400_with_the_field(
    completed_case: Case, alice: User, body: dict[str, Any], loc: list[str]
) -> None:
    response = client_for(alice).post(url(completed_case), body, format="json")
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["errors"]] == [loc]
    assert not ClinicianReview.objects.exists()


def test_review_is_audited_without_the_free_text(completed_case: Case, alice: User) -> None:
    body = {
        "decision": "reject",
        "reason_code": "patient-contraindication",
        "reason_text": "Canary-7731 has a contraindication",
    }
    client_for(alice).post(url(completed_case), body, format="json")
    event = AuditEvent.objects.get(code="review.recorded")
    assert event.case_id == completed_case.id
    assert event.details["decision"] == "reject"
    assert event.details["reason_code"] == "patient-contraindication"
    assert "Canary-7731" not in str(event.details)


def test_a_case_without_an_answer_cannot_be_reviewed(alice: User) -> None:
    case = submitted_case(alice)
    response = client_for(alice).post(url(case), {"decision": "accept"}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["loc"] == ["case", "status"]


def test_only_the_clinician_who_can_see_the_case_reviews_it(
    completed_case: Case, bob: User, carol: User, ehr_client: Any
) -> None:
    assert client_for(bob).post(url(completed_case), {"decision": "accept"}).status_code == 404
    # Auditors read reviews but record none; integrations send feedback by CDS Hooks.
    assert client_for(carol).get(url(completed_case)).status_code == 200
    assert client_for(carol).post(url(completed_case), {"decision": "accept"}).status_code == 403
    assert ehr_client.post(url(completed_case), {"decision": "accept"}).status_code == 403
    assert not ClinicianReview.objects.exists()

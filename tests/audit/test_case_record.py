"""The auditor's case record shows the answer as the clinician saw it and a timeline that
filters; a CDS Hooks submission is labelled by its EHR, not as a person who signed in."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from audit.services import Actor
from clinical.models import Case
from clinical.schemas import CaseInput
from clinical.services import case_submit
from tests import factories
from tests.factories import load_case


@pytest.fixture
def auditor(carol: User) -> Client:
    client = Client()
    client.force_login(carol)
    return client


def test_case_record_shows_the_answer_with_the_clinicians_template(
    auditor: Client, completed_case: Case, alice: User
) -> None:
    clinician = Client()
    clinician.force_login(alice)
    seen = clinician.get(f"/cases/{completed_case.id}/").content.decode()
    body = auditor.get(f"/audit/cases/{completed_case.id}/").content.decode()
    # The same rendered differential the clinician's page shows, not the stored JSON.
    start, end = '<table class="answer-table" id="differential">', "</table>"
    differential = seen[seen.index(start) : seen.index(end, seen.index(start))]
    assert "Acute MI" in differential
    assert differential in body
    assert "<details open><summary>Answer shown" not in body
    assert 'id="confidence-words"' in body


def test_case_record_timeline_is_newest_first_and_filters(
    auditor: Client, completed_case: Case, alice: User
) -> None:
    factories.reviewed_case(completed_case, alice, decision="accept")
    page = auditor.get(f"/audit/cases/{completed_case.id}/")
    ids = [event.id for event in page.context["timeline"]]
    assert ids == sorted(ids, reverse=True) and len(ids) >= 4
    only_reviews = auditor.get(f"/audit/cases/{completed_case.id}/", {"event": "review.recorded"})
    assert [e.code for e in only_reviews.context["timeline"]] == ["review.recorded"]
    assert "decision</span> accept" in only_reviews.content.decode()  # its details
    nobody = auditor.get(f"/audit/cases/{completed_case.id}/", {"actor": "mallory"})
    assert nobody.context["timeline"] == []
    assert "No event of this case matches" in nobody.content.decode()


def test_a_cds_hooks_submission_is_labelled_by_its_ehr(auditor: Client, alice: User) -> None:
    ehr = Actor(label="cds:https://ehr.hospital.example", role="integration")
    case = case_submit(
        case_input=CaseInput.model_validate(load_case()),
        actor=ehr,
        submitted_by=alice,
        intake="cds-hooks",
    )
    signed_in = factories.submitted_case(alice)
    listed = auditor.get("/audit/cases/").content.decode()
    assert "CDS Hooks: https://ehr.hospital.example" in listed
    by_ehr = auditor.get("/audit/cases/", {"system": "cds-hooks"}).content.decode()
    assert f"/audit/cases/{case.id}/" in by_ehr and f"/audit/cases/{signed_in.id}/" not in by_ehr
    by_person = auditor.get("/audit/cases/", {"system": "person"}).content.decode()
    assert f"/audit/cases/{case.id}/" not in by_person
    assert f"/audit/cases/{signed_in.id}/" in by_person
    record = auditor.get(f"/audit/cases/{case.id}/").content.decode()
    assert "an EHR through CDS Hooks" in record and "a person, signed in" not in record

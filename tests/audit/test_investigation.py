"""An auditor's investigation: one search by patient or person, across cases and events,
answers "who viewed this patient's case, and did anyone override the answer?"."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.actors import actor_for
from audit.models import AuditEvent
from clinical.models import Case
from clinical.services import case_viewed
from tests import factories
from tests.fakes import FakeModelServer


@pytest.fixture
def auditor(carol: User) -> Client:
    client = Client()
    client.force_login(carol)
    return client


@pytest.fixture
def overridden_then_accepted(completed_case: Case, alice: User, bob: User) -> Case:
    """alice's case ED-2026-000123: modified, then accepted (the latest review accepts);
    bob opened it."""
    factories.reviewed_case(
        completed_case,
        alice,
        decision="modify",
        reason_code="need-more-info",
        reason_text="troponin too early",
        plan=["Repeat troponin in 3 hours"],
    )
    factories.reviewed_case(completed_case, alice, decision="accept")
    case_viewed(case=completed_case, actor=actor_for(bob))
    return completed_case


def _today() -> str:
    return timezone.now().date().isoformat()


def test_one_search_by_patient_id_names_the_viewers_and_every_override(
    auditor: Client, overridden_then_accepted: Case, alice: User, fake_model: FakeModelServer
) -> None:
    other = factories.completed_case(alice, fake_model)  # same sample case, another id
    Case.objects.filter(id=other.id).update(external_id_hash="")
    page = auditor.get(
        "/audit/investigate/",
        {"patient": " ed-2026-000123 ", "since": _today(), "until": _today()},
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert f"/audit/cases/{overridden_then_accepted.id}/" in body
    assert f"/audit/cases/{other.id}/" not in body
    finding = page.context["result"].cases
    assert [f.facts.case_id for f in finding] == [overridden_then_accepted.id]
    assert [r.decision for r in finding[0].overrides] == ["modify"]
    assert "bob" in [v.label for v in finding[0].viewers]
    # The events of that case, newest first, with their details.
    events = list(page.context["page"].object_list)
    assert {e.case_id for e in events} == {overridden_then_accepted.id}
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)
    assert "case.viewed" in [e.code for e in events]
    assert "need-more-info" in body  # the review's details, not just its code
    # The search itself is audited, without the patient's id in the ledger.
    searched = AuditEvent.objects.filter(code="audit.viewed", object_id="investigate").get()
    assert searched.details["filters"]["patient"] == "(given)"
    assert "ED-2026" not in str(searched.details)


def test_a_date_range_before_the_views_names_nobody(
    auditor: Client, overridden_then_accepted: Case
) -> None:
    last_year = (timezone.now() - dt.timedelta(days=365)).date().isoformat()
    page = auditor.get(
        "/audit/investigate/",
        {"patient": "ED-2026-000123", "since": last_year, "until": last_year},
    )
    finding = page.context["result"].cases
    assert [f.facts.case_id for f in finding] == [overridden_then_accepted.id]
    assert finding[0].viewers == []
    assert list(page.context["page"].object_list) == []


def test_search_by_person_finds_the_cases_they_viewed_by_part_of_the_name(
    auditor: Client, overridden_then_accepted: Case
) -> None:
    page = auditor.get("/audit/investigate/", {"viewed_by": "BO"})
    assert [f.facts.case_id for f in page.context["result"].cases] == [overridden_then_accepted.id]
    events = list(page.context["page"].object_list)
    assert [(e.code, e.actor_label) for e in events] == [("case.viewed", "bob")]
    nobody = auditor.get("/audit/investigate/", {"viewed_by": "mallory"})
    assert nobody.context["result"].cases == []
    by_person = auditor.get("/audit/investigate/", {"person": "bo", "code": "view"})
    assert [e.actor_label for e in by_person.context["page"].object_list] == ["bob"]


def test_ever_overridden_finds_a_case_whose_latest_review_accepts(
    auditor: Client, overridden_then_accepted: Case
) -> None:
    found = auditor.get("/audit/investigate/", {"overridden": "on"})
    assert [f.facts.case_id for f in found.context["result"].cases] == [overridden_then_accepted.id]
    listed = auditor.get("/audit/cases/", {"overridden": "on"}).content.decode()
    assert f"/audit/cases/{overridden_then_accepted.id}/" in listed


def test_investigation_refuses_a_bad_range_with_the_field(auditor: Client, carol: User) -> None:
    page = auditor.get("/audit/investigate/", {"since": "2026-11-30", "until": "2026-11-01"})
    assert page.status_code == 400
    assert "until" in page.content.decode()
    assert auditor.get("/audit/investigate/", {"since": "yesterday"}).status_code == 400


def test_events_screen_matches_part_of_an_actor_or_code_and_a_patient_id(
    auditor: Client, overridden_then_accepted: Case
) -> None:
    def codes(**params: Any) -> list[str]:
        page = auditor.get("/audit/events/", params)
        assert page.status_code == 200
        return [e.code for e in page.context["page"].object_list]

    assert codes(actor="BO") == ["case.viewed"]
    assert set(codes(code="review.rec")) == {"review.recorded"}
    on_case = codes(patient="ED-2026-000123")
    assert "case.submitted" in on_case and "review.recorded" in on_case
    # Newest first by default, and every row shows its details.
    ids = [e.id for e in auditor.get("/audit/events/").context["page"].object_list]
    assert ids == sorted(ids, reverse=True)
    body = auditor.get("/audit/events/", {"code": "review.recorded"}).content.decode()
    assert "Details" in body and "need-more-info" in body

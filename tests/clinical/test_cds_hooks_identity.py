"""Who a CDS Hooks call is for: the EHR's user (``context.userId``) linked to a Bedside
clinician, who owns the case the card links to and is credited with the feedback; and
feedback that an EHR repeats recorded once."""

from __future__ import annotations

import copy
import uuid
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside.accounts.models import EhrUserLink
from clinical.models import Case, ClinicianReview
from clinical.reasons import REASON_CODE_SYSTEM
from tests.clinical.conftest import EHR_ISSUER
from tests.clinical.test_cds_hooks import PATIENT_VIEW, call, complete, example, patient_view
from tests.fakes import FakeModelServer

PRACTITIONER = "Practitioner/example"  # context.userId of the spec's patient-view example


def link_alice(alice: Any) -> None:
    call_command(
        "ehr_user_link",
        "attach",
        "--issuer",
        EHR_ISSUER,
        "--ehr-user",
        PRACTITIONER,
        "--user",
        alice.username,
        stdout=StringIO(),
    )


def opens_for(user: Any, url: str) -> int:
    client = Client()
    client.force_login(user)
    return int(client.get(urlsplit(url).path).status_code)


def test_an_unknown_ehr_user_gets_a_pending_link_and_the_case_stays_the_ehrs(
    ehr_key: Any, alice: Any
) -> None:
    response = call(ehr_key, PATIENT_VIEW, patient_view())
    assert response.status_code == 200, response.json()
    link = EhrUserLink.objects.get()
    assert (link.issuer, link.ehr_user_id, link.status, link.user) == (
        EHR_ISSUER,
        PRACTITIONER,
        "pending",
        None,
    )
    assert Case.objects.get().submitted_by.username.startswith("cds:")
    # Not hers: refused, with only the offer of emergency access (issue 19).
    assert opens_for(alice, response.json()["cards"][0]["links"][0]["url"]) == 403
    assert AuditEvent.objects.filter(code="ehr_user_link.pending").count() == 1
    # A second call from the same EHR user makes no second link.
    call(ehr_key, PATIENT_VIEW, patient_view() | {"hookInstance": "x-2"})
    assert EhrUserLink.objects.count() == 1


def test_a_linked_clinician_owns_the_case_and_the_cards_link_opens_for_them(
    ehr_key: Any, alice: Any, bob: Any
) -> None:
    call(ehr_key, PATIENT_VIEW, patient_view())  # first sight: pending
    link_alice(alice)
    assert EhrUserLink.objects.get().status == "active"
    request = patient_view() | {"hookInstance": str(uuid.uuid4())}
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 200, response.json()
    url = response.json()["cards"][0]["links"][0]["url"]
    case = Case.objects.get(id=urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    assert case.submitted_by == alice
    assert opens_for(alice, url) == 200
    assert opens_for(bob, url) == 403  # not his: the offer of emergency access only
    assert verify_chain() is None


def test_a_disabled_link_gives_the_case_back_to_the_ehr(ehr_key: Any, alice: Any) -> None:
    link_alice(alice)
    call_command(
        "ehr_user_link",
        "disable",
        "--issuer",
        EHR_ISSUER,
        "--ehr-user",
        PRACTITIONER,
        stdout=StringIO(),
    )
    assert call(ehr_key, PATIENT_VIEW, patient_view()).status_code == 200
    assert Case.objects.get().submitted_by != alice


def test_only_an_active_clinician_can_be_linked(ehr_key: Any, carol: Any) -> None:
    with pytest.raises(CommandError, match="not an active clinician"):
        link_alice(carol)  # carol is an auditor
    out = StringIO()
    call_command("ehr_user_link", "list", "--status", "pending", stdout=out)
    assert PRACTITIONER in out.getvalue()


# --- feedback -------------------------------------------------------------------------------


@pytest.fixture
def alices_card(ehr_key: Any, alice: Any, fake_model: FakeModelServer) -> dict[str, Any]:
    link_alice(alice)
    request = patient_view()
    call(ehr_key, PATIENT_VIEW, request)
    complete(Case.objects.get(), fake_model)
    again = copy.deepcopy(request) | {"hookInstance": str(uuid.uuid4())}
    card: dict[str, Any] = call(ehr_key, PATIENT_VIEW, again).json()["cards"][0]
    return card


def test_feedback_is_credited_to_the_linked_clinician(
    ehr_key: Any, alice: Any, alices_card: dict[str, Any]
) -> None:
    feedback = example("hl7spec__L1171.json")
    feedback["feedback"][0]["card"] = alices_card["uuid"]
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 200, response.json()
    assert ClinicianReview.objects.get().reviewer == alice


@pytest.fixture
def ehrs_card(ehr_key: Any, fake_model: FakeModelServer) -> dict[str, Any]:
    """An assessment card for an EHR user linked to no one."""
    request = patient_view()
    call(ehr_key, PATIENT_VIEW, request)
    complete(Case.objects.get(), fake_model)
    again = copy.deepcopy(request) | {"hookInstance": str(uuid.uuid4())}
    card: dict[str, Any] = call(ehr_key, PATIENT_VIEW, again).json()["cards"][0]
    return card


def test_the_same_feedback_twice_is_one_review(ehr_key: Any, ehrs_card: dict[str, Any]) -> None:
    feedback = example("hl7spec__L1171.json")
    feedback["feedback"][0]["card"] = ehrs_card["uuid"]
    first = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    again = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert first.status_code == again.status_code == 200
    review = ClinicianReview.objects.get()
    assert first.json()["recorded"] == [{"card": ehrs_card["uuid"], "review": review.pk}]
    assert again.json()["recorded"] == [
        {"card": ehrs_card["uuid"], "review": review.pk, "replayed": True}
    ]
    assert AuditEvent.objects.filter(code="review.recorded").count() == 1


def test_an_override_after_an_accept_is_a_second_review(
    ehr_key: Any, alices_card: dict[str, Any]
) -> None:
    accepted = example("hl7spec__L1171.json")
    accepted["feedback"][0]["card"] = alices_card["uuid"]
    overridden = example("hl7spec__L1235.json")
    overridden["feedback"][0]["card"] = alices_card["uuid"]
    overridden["feedback"][0]["overrideReason"]["reason"] = {
        "system": REASON_CODE_SYSTEM,
        "code": "patient-contraindication",
    }
    assert call(ehr_key, PATIENT_VIEW + "/feedback", accepted).status_code == 200
    assert call(ehr_key, PATIENT_VIEW + "/feedback", overridden).status_code == 200
    assert [r.decision for r in ClinicianReview.objects.order_by("id")] == ["accept", "reject"]

"""Break-glass (issue 19): a clinician opens another clinician's case only by stating a
reason, for ``BEDSIDE_EMERGENCY_ACCESS_MINUTES``, read only, audited; the same through the
API for clinicians and for integration keys issued with ``cases:emergency`` named.

Time is moved by the ``now`` the services and selectors take, never by waiting."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from pydantic import ValidationError
from rest_framework.test import APIClient

from audit.models import AuditEvent
from clinical import services
from clinical.models import Case, EmergencyAccess
from clinical.screens import presenting
from tests.conftest import client_for
from tests.factories import EMERGENCY_REASON as REASON
from tests.factories import TEST_ACTOR, emergency_access, issued_key, signed_in

pytestmark = pytest.mark.django_db


def events(code: str, case: Case) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(code=code, case_id=case.id).order_by("id"))


# --- The clinician's screens ---------------------------------------------------------------


def test_another_clinicians_case_is_refused_with_the_offer_of_emergency_access(
    completed_case: Case, bob: User
) -> None:
    response = signed_in(bob).get(f"/cases/{completed_case.id}/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "This case is not yours" in html
    assert "Open with emergency access" in html
    assert "recorded in the audit trail" in html and "reviews every emergency access" in html
    assert "read only" in html
    assert 'action="emergency-access/"' in html
    # Nothing of the case itself: not its id, not its patient's complaint.
    assert str(completed_case.id) not in html
    assert completed_case.input["chief_complaint"] not in html
    assert events("case.viewed", completed_case) == []


@pytest.mark.parametrize("reason", ["", "   ", "urgent", "  too short  "])
def test_emergency_access_without_a_real_reason_is_refused_next_to_the_box(
    completed_case: Case, bob: User, reason: str
) -> None:
    response = signed_in(bob).post(
        f"/cases/{completed_case.id}/emergency-access/", {"reason": reason}
    )
    html = response.content.decode()
    assert response.status_code == 400
    error = re.search(r'<div class="field-error" id="f-reason-error">(.*?)</div>', html, re.S)
    assert error is not None and "at least 10 characters" in error.group(1)
    assert "Emergency access was not granted" in html
    # Shown at .../emergency-access/, the form posts to that same address again.
    assert 'action="./"' in html
    assert str(completed_case.id) not in html
    assert not EmergencyAccess.objects.exists()
    assert events("case.emergency_access", completed_case) == []


def test_emergency_access_opens_the_case_with_its_banner_and_is_audited(
    completed_case: Case, bob: User, settings: Any
) -> None:
    settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES = 45
    client = signed_in(bob)
    before = timezone.now()
    response = client.post(
        f"/cases/{completed_case.id}/emergency-access/", {"reason": f"  {REASON}  "}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/cases/{completed_case.id}/"

    grant = EmergencyAccess.objects.get()
    assert (grant.case_id, grant.person_id, grant.reason) == (completed_case.id, bob.pk, REASON)
    assert grant.expires_at - grant.granted_at == timedelta(minutes=45)
    assert before <= grant.granted_at <= timezone.now()
    (event,) = events("case.emergency_access", completed_case)
    assert (event.actor_id, event.actor_label, event.role) == (bob.pk, "bob", "clinician")
    assert (event.object_type, event.object_id) == ("emergency_access", str(grant.pk))
    assert event.details["purpose_of_use"] == "BTG" and event.details["minutes"] == 45
    assert REASON not in json.dumps(event.details)  # free text stays on the encrypted row

    page = client.get(f"/cases/{completed_case.id}/")
    html = page.content.decode()
    assert page.status_code == 200
    banner = re.search(r'<section id="emergency-access".*?</section>', html, re.S)
    assert banner is not None
    assert "Emergency access" in banner.group()
    assert REASON in banner.group()
    assert f"until <strong>{grant.expires_at:%H:%M} UTC</strong>" in banner.group()
    assert "will be reviewed by compliance" in banner.group()
    assert completed_case.input["chief_complaint"] in html
    (viewed,) = events("case.viewed", completed_case)
    assert viewed.actor_id == bob.pk
    assert viewed.details["emergency_access_id"] == grant.pk


def test_emergency_access_is_read_only(completed_case: Case, bob: User) -> None:
    emergency_access(completed_case, bob)
    client = signed_in(bob)
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert 'id="review-form"' not in html
    assert "the case's own clinician reviews the answer" in html
    response = client.post(f"/cases/{completed_case.id}/reviews/", {"decision": "accept"})
    assert response.status_code == 404
    assert not completed_case.reviews.exists()


def test_emergency_access_ends_after_its_minutes_and_the_offer_comes_back(
    completed_case: Case, bob: User, settings: Any
) -> None:
    settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES = 30
    grant = emergency_access(completed_case, bob)
    inside = grant.granted_at + timedelta(minutes=29, seconds=59)
    at_the_end = grant.granted_at + timedelta(minutes=30)
    assert presenting.case_opened(bob, completed_case.id, now=inside).emergency == grant
    ended = presenting.case_opened(bob, completed_case.id, now=at_the_end)
    assert (ended.case, ended.emergency, ended.ended) == (None, None, grant)


def test_an_expired_emergency_access_is_refused_again_with_when_it_ended(
    completed_case: Case, bob: User, settings: Any
) -> None:
    settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES = 30
    old = emergency_access(completed_case, bob, minutes_ago=31)
    response = signed_in(bob).get(f"/cases/{completed_case.id}/")
    html = response.content.decode()
    assert response.status_code == 403
    assert f"Your emergency access to it ended at {old.expires_at:%H:%M} UTC" in html
    assert "Open with emergency access" in html
    assert events("case.viewed", completed_case) == []
    assert signed_in(bob).get(f"/cases/{completed_case.id}/status.json").status_code == 404


def test_the_status_poll_answers_during_emergency_access(completed_case: Case, bob: User) -> None:
    client = signed_in(bob)
    assert client.get(f"/cases/{completed_case.id}/status.json").status_code == 404
    emergency_access(completed_case, bob)
    assert client.get(f"/cases/{completed_case.id}/status.json").status_code == 200


def test_ones_own_case_needs_no_emergency_access(completed_case: Case, alice: User) -> None:
    response = signed_in(alice).post(
        f"/cases/{completed_case.id}/emergency-access/", {"reason": REASON}
    )
    assert response.status_code == 302
    assert not EmergencyAccess.objects.exists()
    with pytest.raises(services.EmergencyAccessRefused):
        services.emergency_access_grant(
            case=completed_case, person=alice, reason=REASON, actor=TEST_ACTOR
        )


def test_the_service_itself_refuses_a_short_reason(completed_case: Case, bob: User) -> None:
    with pytest.raises(ValidationError, match="at least 10 characters"):
        services.emergency_access_grant(
            case=completed_case, person=bob, reason=" help ", actor=TEST_ACTOR
        )
    assert not EmergencyAccess.objects.exists()


def test_auditors_are_not_offered_emergency_access(completed_case: Case, carol: User) -> None:
    client = signed_in(carol)
    assert client.get(f"/cases/{completed_case.id}/").status_code == 404
    response = client.post(f"/cases/{completed_case.id}/emergency-access/", {"reason": REASON})
    assert response.status_code == 403
    assert not EmergencyAccess.objects.exists()


def test_a_case_that_does_not_exist_is_still_404(completed_case: Case, bob: User) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert signed_in(bob).get(f"/cases/{missing}/").status_code == 404
    response = signed_in(bob).post(f"/cases/{missing}/emergency-access/", {"reason": REASON})
    assert response.status_code == 404


# --- The record: never deleted, never rewritten -------------------------------------------


def _refused(statement: str, params: list[Any]) -> str:
    with (
        pytest.raises(IntegrityError) as refusal,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement, params)
    return str(refusal.value)


def test_emergency_accesses_cannot_be_deleted_or_rewritten(
    completed_case: Case, bob: User, carol: User
) -> None:
    grant = emergency_access(completed_case, bob)
    assert "DELETE on clinical_emergencyaccess" in _refused(
        "DELETE FROM clinical_emergencyaccess WHERE id = %s", [grant.pk]
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        EmergencyAccess.objects.filter(pk=grant.pk).delete()
    later = timezone.now() + timedelta(days=1)
    assert "only marked reviewed" in _refused(
        "UPDATE clinical_emergencyaccess SET expires_at = %s WHERE id = %s", [later, grant.pk]
    )
    services.emergency_access_review(
        grant_id=grant.pk,
        reviewer=carol,
        note="Checked with the ED rota: justified.",
        actor=TEST_ACTOR,
    )
    assert "only marked reviewed" in _refused(
        "UPDATE clinical_emergencyaccess SET reviewed_at = now() WHERE id = %s", [grant.pk]
    )
    grant.refresh_from_db()
    assert grant.review_note == "Checked with the ED rota: justified."


# --- The API -------------------------------------------------------------------------------


def test_api_emergency_access_lets_a_clinician_read_the_case_and_says_so(
    completed_case: Case, bob: User
) -> None:
    client = client_for(bob)
    detail = f"/api/v1/cases/{completed_case.id}/"
    assert client.get(detail).status_code == 404
    response = client.post(f"{detail}emergency-access/", {"reason": REASON}, format="json")
    assert response.status_code == 201
    body = response.json()
    grant = EmergencyAccess.objects.get()
    assert body["id"] == grant.pk and body["case_id"] == str(completed_case.id)
    assert (body["person"], body["reason"]) == ("bob", REASON)
    assert body["links"]["case"].endswith(detail)
    read = client.get(detail)
    assert read.status_code == 200
    assert read.json()["access"] == {
        "kind": "emergency",
        "emergency_access_id": grant.pk,
        "until": body["expires_at"],
    }
    (viewed,) = events("case.viewed", completed_case)
    assert (viewed.actor_id, viewed.details["emergency_access_id"]) == (bob.pk, grant.pk)
    # The submitter's own read carries no "access" key.
    assert "access" not in client_for(completed_case.submitted_by).get(detail).json()
    # Read only: reviews stay the submitter's.
    assert (
        client.post(f"{detail}reviews/", {"decision": "accept"}, format="json").status_code == 404
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [({}, ["reason"]), ({"reason": "  short  "}, ["reason"]), ({"reason": 7}, ["reason"])],
)
def test_api_emergency_access_without_a_reason_is_a_400_naming_it(
    completed_case: Case, bob: User, body: dict[str, Any], loc: list[str]
) -> None:
    response = client_for(bob).post(
        f"/api/v1/cases/{completed_case.id}/emergency-access/", body, format="json"
    )
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["errors"]] == [loc]
    assert not EmergencyAccess.objects.exists()


def test_api_key_issued_without_scopes_does_not_hold_emergency_access(
    completed_case: Case, ehr_client: APIClient
) -> None:
    response = ehr_client.post(
        f"/api/v1/cases/{completed_case.id}/emergency-access/", {"reason": REASON}, format="json"
    )
    assert response.status_code == 403
    assert "cases:emergency" in response.json()["errors"][0]["msg"]
    assert not EmergencyAccess.objects.exists()
    assert ehr_client.get(f"/api/v1/cases/{completed_case.id}/").status_code == 404


def test_api_key_issued_with_the_emergency_scope_gets_it(completed_case: Case) -> None:
    key = issued_key("ehr-btg", scopes=["cases:read", "cases:emergency"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.key}")
    detail = f"/api/v1/cases/{completed_case.id}/"
    response = client.post(f"{detail}emergency-access/", {"reason": REASON}, format="json")
    assert response.status_code == 201
    (event,) = events("case.emergency_access", completed_case)
    assert (event.actor_id, event.role) == (key.api_key.user_id, "integration")
    read = client.get(detail)
    assert read.status_code == 200 and read.json()["access"]["kind"] == "emergency"


def test_api_emergency_access_ends_after_its_minutes(
    completed_case: Case, bob: User, settings: Any
) -> None:
    settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES = 30
    emergency_access(completed_case, bob, minutes_ago=31)
    assert client_for(bob).get(f"/api/v1/cases/{completed_case.id}/").status_code == 404


def test_api_emergency_access_to_ones_own_case_is_a_409(completed_case: Case, alice: User) -> None:
    response = client_for(alice).post(
        f"/api/v1/cases/{completed_case.id}/emergency-access/", {"reason": REASON}, format="json"
    )
    assert response.status_code == 409
    assert not EmergencyAccess.objects.exists()


def test_the_openapi_document_describes_emergency_access(db: None) -> None:
    schema = json.loads(APIClient().get("/api/v1/schema/?format=json").content)
    operation = schema["paths"]["/api/v1/cases/{case_id}/emergency-access/"]["post"]
    assert operation["operationId"] == "case_emergency_access"
    assert "201" in operation["responses"] and "400" in operation["responses"]
    assert "EmergencyAccessGrant" in json.dumps(operation["responses"]["201"])
    assert "access" in schema["components"]["schemas"]["Case"]["properties"]

"""What tests build again and again: users with a role, a browser signed in as one,
integration keys, submitted cases, cases run to completion, reviews, break-glass accesses.
Each goes through the same service a request would, so its audit rows and encrypted columns
are the real ones (no model row written around them).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.services import Actor
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical import lifecycle, services
from clinical.models import Case, CaseStatus, EmergencyAccess
from clinical.schemas import CaseInput, ReviewInput
from tests.fakes import FakeModelServer, agreeing_completion

DATA = Path(__file__).parent / "data"
TEST_ACTOR = Actor(label="tests", role="admin")
PASSWORD = "correct horse battery"
# The sample case's answer: the three samples agree on acute MI (case differs on purpose).
AGREEING_TOPS = ["Acute MI", "acute MI", "Unstable angina"]
# The reason every break-glass access in the tests gives (well over the minimum).
EMERGENCY_REASON = "Covering the emergency department: patient deteriorating, owner off shift"


def load_case(name: str = "case_chest_pain.json") -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def user_with_role(username: str, role: str) -> User:
    """A user who signs in with ``PASSWORD`` and holds ``role``."""
    user = User.objects.create_user(username=username, password=PASSWORD)
    roles.grant_role(user, role)
    return user


def signed_in(user: User) -> Client:
    """A browser session signed in as ``user``."""
    client = Client()
    client.force_login(user)
    return client


def issued_key(
    name: str = "ehr-test", role: str = roles.INTEGRATION, **options: Any
) -> accounts_services.IssuedKey:
    """An API key as the admin command issues it (``options``: callback_url, rate limit)."""
    return accounts_services.api_key_issue(name=name, role=role, actor=TEST_ACTOR, **options)


def submitted_case(submitted_by: User, **changes: Any) -> Case:
    """The sample case (``changes`` replace its fields), queued as ``submitted_by``'s."""
    case_input = CaseInput.model_validate({**load_case(), **changes})
    return services.case_submit(case_input=case_input, actor=TEST_ACTOR, submitted_by=submitted_by)


def completed_case(
    submitted_by: User, fake_model: FakeModelServer, *, tops: list[str] = AGREEING_TOPS
) -> Case:
    """A case submitted by ``submitted_by``, run to completion against the fake model
    server, whose samples name ``tops`` as their top diagnoses."""
    case = submitted_case(submitted_by)
    fake_model.push(agreeing_completion(tops))
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED
    return case


def reviewed_case(case: Case, reviewer: User, **review: Any) -> Case:
    """``case`` with ``reviewer``'s review recorded (``review``: the review's fields)."""
    services.review_record(
        case=case, review=ReviewInput.model_validate(review), actor=TEST_ACTOR, reviewer=reviewer
    )
    return case


def emergency_access(case: Case, person: User, *, minutes_ago: float = 0) -> EmergencyAccess:
    """``person``'s break-glass access to ``case`` as the service grants it, with
    ``EMERGENCY_REASON``, ``minutes_ago`` in the past."""
    return services.emergency_access_grant(
        case=case,
        person=person,
        reason=EMERGENCY_REASON,
        actor=TEST_ACTOR,
        now=timezone.now() - timedelta(minutes=minutes_ago),
    )

"""What tests build again and again: users with a role, integration keys, submitted cases,
cases run to completion, reviews. Each goes through the same service a request would, so
its audit rows and encrypted columns are the real ones (no model row written around them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User

from audit.services import Actor
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical import lifecycle, services
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseInput, ReviewInput
from tests.fakes import FakeModelServer, agreeing_completion

DATA = Path(__file__).parent / "data"
TEST_ACTOR = Actor(label="tests", role="admin")
PASSWORD = "correct horse battery"
# The sample case's answer: the three samples agree on acute MI (case differs on purpose).
AGREEING_TOPS = ["Acute MI", "acute MI", "Unstable angina"]


def load_case(name: str = "case_chest_pain.json") -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def user_with_role(username: str, role: str) -> User:
    """A user who signs in with ``PASSWORD`` and holds ``role``."""
    user = User.objects.create_user(username=username, password=PASSWORD)
    roles.grant_role(user, role)
    return user


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

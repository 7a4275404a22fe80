"""Writes of the clinical app: submitting cases, issuing keys, demo accounts."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from audit.models import Action
from audit.services import Actor, record
from clinical import roles
from clinical.authentication import KEY_PREFIX, hash_key
from clinical.models import ApiKey, Case, CaseStatus, ClinicianReview, ReviewSource
from clinical.schemas import CaseInput, Decision, ReviewInput

logger = logging.getLogger(__name__)


def actor_for(user: Any, request: HttpRequest | None = None) -> Actor:
    source = request.META.get("REMOTE_ADDR") if request is not None else None
    return Actor(
        label=user.get_username() if user is not None else "anonymous",
        role=roles.primary_role(user),
        user_id=user.pk if user is not None and user.is_authenticated else None,
        source_address=source or None,
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )


def _enqueue(case_id: str) -> None:
    # Imported here: the task module pulls in the model client, which intake doesn't need.
    from reasoning.tasks import run_case_task

    try:
        run_case_task.delay(case_id)
    except Exception:
        # The case is saved and stays `queued`; the sweeper re-sends it. Never lose the
        # clinician's submission because the broker blinked.
        logger.exception("case %s saved but not enqueued; the sweeper will re-send it", case_id)


def case_submit(*, case_input: CaseInput, actor: Actor, submitted_by: Any) -> Case:
    """Save a validated case as `queued` and send its task once the row is committed."""
    with transaction.atomic():
        case = Case.objects.create(
            external_id=case_input.external_id,
            priority=case_input.priority.value,
            status=CaseStatus.QUEUED,
            input=case_input.model_dump(mode="json"),
            submitted_by=submitted_by,
        )
        record(
            actor=actor,
            action=Action.CREATE,
            code="case.submitted",
            case_id=case.id,
            details={"priority": case.priority, "setting": case_input.setting},
        )
        case_id = str(case.id)
        transaction.on_commit(lambda: _enqueue(case_id))
    return case


class RerunNotPossible(Exception):
    """Only a failed case is run again (a completed one has its answer and its reviews)."""


def case_rerun(*, case: Case, actor: Actor) -> Case:
    """Send a failed case to the model again. Its failed run stays on record; the new run
    is added beside it."""
    with transaction.atomic():
        locked = Case.objects.select_for_update().get(pk=case.pk)
        if locked.status != CaseStatus.FAILED:
            raise RerunNotPossible(f"the case is {locked.status}; only a failed case is re-run")
        locked.status = CaseStatus.QUEUED
        locked.status_detail = f"re-run requested by {actor.label}"
        locked.attempts = 0
        locked.retries = 0
        locked.next_retry_at = None
        locked.finished_at = None
        locked.claim_token = None
        locked.claimed_until = None
        locked.save()
        record(
            actor=actor,
            action=Action.EXECUTE,
            code="case.rerun_requested",
            case_id=locked.id,
            details={"previous_status": CaseStatus.FAILED},
        )
        case_id = str(locked.id)
        transaction.on_commit(lambda: _enqueue(case_id))
    return locked


def case_viewed(*, case: Case, actor: Actor) -> None:
    record(
        actor=actor,
        action=Action.READ,
        code="case.viewed",
        case_id=case.id,
        details={"status": case.status},
    )


class ReviewNotPossible(Exception):
    """The case has no completed answer to review (still queued, running, or failed)."""


def review_record(
    *,
    case: Case,
    review: ReviewInput,
    actor: Actor,
    reviewer: Any,
    source: str = ReviewSource.API,
    card_uuid: str = "",
    hook_instance: str = "",
) -> ClinicianReview:
    """Append a clinician's review of the case's latest completed run.

    Reviews are never edited: a later review supersedes an earlier one.
    """
    from reasoning.models import ReasoningRun, RunOutcome

    run = (
        ReasoningRun.objects.filter(case=case, outcome=RunOutcome.COMPLETED)
        .order_by("-created_at", "-id")
        .first()
    )
    if case.status != CaseStatus.COMPLETED or run is None:
        raise ReviewNotPossible(f"the case is {case.status}; only a completed answer is reviewed")
    modified = None
    if review.decision == Decision.MODIFY:
        modified = {
            "differential": [d.model_dump() for d in review.differential],
            "plan": list(review.plan),
        }
    with transaction.atomic():
        saved = ClinicianReview.objects.create(
            case=case,
            run=run,
            reviewer=reviewer,
            decision=review.decision.value,
            reason_code=review.reason_code,
            reason_text=review.reason_text,
            modified_assessment=modified,
            source=source,
            card_uuid=card_uuid,
            hook_instance=hook_instance,
        )
        # The reason text is the clinician's free text about a patient: not in the audit
        # details, which must hold no free-text patient data. The review row keeps it.
        record(
            actor=actor,
            action=Action.CREATE,
            code="review.recorded",
            case_id=case.id,
            object_type="review",
            object_id=str(saved.pk),
            details={
                "decision": saved.decision,
                "reason_code": saved.reason_code,
                "run_id": run.pk,
                "source": source,
            },
        )
    return saved


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # shown once, never stored


def api_key_issue(*, name: str, role: str, actor: Actor) -> IssuedKey:
    if role not in roles.ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(roles.ALL_ROLES)}")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=f"key:{name}"[:150], password=None)
        roles.grant_role(user, role)
        api_key = ApiKey.objects.create(name=name, prefix=prefix, key_hash=hash_key(key), user=user)
        record(
            actor=actor,
            action=Action.CREATE,
            code="key.issued",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={"name": name, "role": role, "prefix": prefix},
        )
    return IssuedKey(api_key=api_key, key=key)


def user_ensure(*, username: str, password: str, role: str, actor: Actor) -> Any:
    """Create or reset a person's login with one role (used for the demo accounts)."""
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == roles.ADMIN
        user.is_superuser = role == roles.ADMIN
        user.save()
        if not user.groups.filter(name=role).exists():
            roles.grant_role(user, role)
            record(
                actor=actor,
                action=Action.UPDATE,
                code="role.changed",
                object_type="user",
                object_id=str(user.pk),
                details={"granted": role, "created": created},
            )
    return user


def cases_listed(*, actor: Actor, shown: int, page: int) -> None:
    """A person's case list was shown (it names chief complaints: a read of patient data)."""
    record(
        actor=actor,
        action=Action.READ,
        code="cases.listed",
        object_type="case_list",
        details={"shown": shown, "page": page},
    )

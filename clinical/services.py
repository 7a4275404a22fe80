"""Writes of the cases app: submitting, re-running and reviewing cases, and recording in
the audit trail that they were read."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, record
from clinical import routing
from clinical.models import (
    Case,
    CaseStatus,
    ClinicianReview,
    EmergencyAccess,
    IdempotencyRecord,
    ReviewSource,
)
from clinical.schemas import (
    CaseInput,
    Decision,
    EmergencyAccessInput,
    EmergencyReviewInput,
    ReviewInput,
)
from clinical.tasks import run_case_task
from reasoning import early_warning
from reasoning import selectors as reasoning_selectors

logger = logging.getLogger(__name__)


def _enqueue(case_id: str, priority: str) -> None:
    try:
        # The priority rides in the message's headers, so routing it to the stat queue asks
        # the database nothing (clinical/routing.py).
        run_case_task.apply_async((case_id,), headers=routing.priority_headers(priority))
    except Exception:
        # The case is saved and stays `queued`; the sweeper re-sends it. Never lose the
        # clinician's submission because the broker blinked.
        logger.exception("case %s saved but not enqueued; the sweeper will re-send it", case_id)


def case_submit(
    *, case_input: CaseInput, actor: Actor, submitted_by: Any, intake: str = "json"
) -> Case:
    """Save a validated case as `queued` and send its task once the row is committed."""
    with transaction.atomic():
        case = _case_create(case_input=case_input, submitted_by=submitted_by)
        _case_submitted(case=case, case_input=case_input, actor=actor, intake=intake)
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
        locked.save_progress()
        record(
            actor=actor,
            action=Action.EXECUTE,
            code="case.rerun_requested",
            case_id=locked.id,
            details={"previous_status": CaseStatus.FAILED},
        )
        case_id, priority = str(locked.id), locked.priority
        transaction.on_commit(lambda: _enqueue(case_id, priority))
    return locked


def _case_create(*, case_input: CaseInput, submitted_by: Any) -> Case:
    """The case row of a submission; the caller holds the transaction."""
    case = Case.objects.create(
        external_id=case_input.external_id,
        priority=case_input.priority.value,
        status=CaseStatus.QUEUED,
        input=case_input.model_dump(mode="json"),
        submitted_by=submitted_by,
    )
    return case


def _case_submitted(*, case: Case, case_input: CaseInput, actor: Actor, intake: str) -> None:
    # The early-warning scores as they stood at intake: what the clinician was shown beside
    # the model's answer can be reconstructed from the ledger (points and codes only).
    scores = early_warning.audit_summary(early_warning.early_warning(case.input))
    record(
        actor=actor,
        action=Action.CREATE,
        code="case.submitted",
        case_id=case.id,
        details={
            "priority": case.priority,
            "setting": case_input.setting,
            "intake": intake,
            "early_warning": scores,
        },
    )
    case_id, priority = str(case.id), case.priority
    transaction.on_commit(lambda: _enqueue(case_id, priority))


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used by this submitter with a different body."""


@dataclass(frozen=True)
class Submission:
    case: Case
    replayed: bool  # True: an earlier request with the same key and body made this case


def case_submit_once(
    *,
    case_input: CaseInput,
    actor: Actor,
    submitted_by: Any,
    idempotency_key: str,
    body_sha256: str,
    intake: str = "json",
) -> Submission:
    """Submit a case at most once per (submitter, Idempotency-Key).

    A retry with the same key and body gets the original case back; the same key with
    another body raises ``IdempotencyConflict``. Concurrent retries are settled by the
    unique constraint on ``IdempotencyRecord``: the losers' transactions roll back whole
    (their case rows with them) and they answer with the winner's case.
    """
    earlier = _idempotent_original(
        user=submitted_by, key=idempotency_key, body_sha256=body_sha256, actor=actor
    )
    if earlier is not None:
        return earlier
    try:
        with transaction.atomic():
            case = _case_create(case_input=case_input, submitted_by=submitted_by)
            # Before the audit record: the audit chain's lock must be taken after the
            # key's row lock, or two racing requests could wait on each other.
            IdempotencyRecord.objects.create(
                user=submitted_by, key=idempotency_key, body_sha256=body_sha256, case=case
            )
            _case_submitted(case=case, case_input=case_input, actor=actor, intake=intake)
    except IntegrityError:
        earlier = _idempotent_original(
            user=submitted_by, key=idempotency_key, body_sha256=body_sha256, actor=actor
        )
        if earlier is None:
            raise
        return earlier
    return Submission(case=case, replayed=False)


def _idempotent_original(
    *, user: Any, key: str, body_sha256: str, actor: Actor
) -> Submission | None:
    used = IdempotencyRecord.objects.select_related("case").filter(user=user, key=key).first()
    if used is None:
        return None
    if not hmac.compare_digest(used.body_sha256, body_sha256):
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request body"
        )
    record(
        actor=actor,
        action=Action.READ,
        code="case.submission_replayed",
        case_id=used.case_id,
        details={"status": used.case.status},
    )
    return Submission(case=used.case, replayed=True)


def case_viewed(
    *, case: Case, actor: Actor, emergency_access: EmergencyAccess | None = None
) -> None:
    """A case was read. Read under break-glass, the event names the grant, so the auditor
    reviewing it sees how often the case was opened while it lasted."""
    details: dict[str, Any] = {"status": case.status}
    if emergency_access is not None:
        details["emergency_access_id"] = emergency_access.pk
    record(
        actor=actor,
        action=Action.READ,
        code="case.viewed",
        case_id=case.id,
        details=details,
    )


def cases_listed(*, actor: Actor, count: int, filters: dict[str, Any]) -> None:
    """A list of cases was read (ids, statuses, external ids: no clinical content)."""
    record(
        actor=actor,
        action=Action.READ,
        code="case.listed",
        object_type="case_list",
        details={"count": count, "filters": filters},
    )


def reviews_viewed(*, case: Case, actor: Actor, count: int) -> None:
    record(
        actor=actor,
        action=Action.READ,
        code="review.viewed",
        case_id=case.id,
        details={"count": count},
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
    run = reasoning_selectors.latest_completed_run(case.id)
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


# --- Break-glass ----------------------------------------------------------------------------

EMERGENCY_ACCESS_GRANTED = "case.emergency_access"
EMERGENCY_ACCESS_REVIEWED = "case.emergency_access_reviewed"


class EmergencyAccessRefused(Exception):
    """Break-glass is for a case that is not the caller's: their own they open as usual."""


def emergency_access_grant(
    *, case: Case, person: Any, reason: str, actor: Actor, now: datetime | None = None
) -> EmergencyAccess:
    """Let ``person`` read ``case`` (not theirs) for ``BEDSIDE_EMERGENCY_ACCESS_MINUTES``,
    for the reason they stated; audited as ``case.emergency_access`` in the same
    transaction, and on the auditors' review list until an auditor marks it reviewed.

    The reason is checked here too (``EmergencyAccessInput``: pydantic's
    ``ValidationError`` when it says too little), whoever calls. It stays on the grant,
    encrypted, and out of the audit event (free text may name the patient).
    """
    checked = EmergencyAccessInput.model_validate({"reason": reason})
    if case.submitted_by_id == person.pk:
        raise EmergencyAccessRefused("this case is yours: open it without emergency access")
    now = now or timezone.now()
    minutes = settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES
    with transaction.atomic():
        grant = EmergencyAccess.objects.create(
            case=case,
            person=person,
            reason=checked.reason,
            granted_at=now,
            expires_at=now + timedelta(minutes=minutes),
        )
        record(
            actor=actor,
            action=Action.EXECUTE,
            code=EMERGENCY_ACCESS_GRANTED,
            case_id=case.id,
            object_type="emergency_access",
            object_id=str(grant.pk),
            details={
                # FHIR's purpose of use for break-glass (v3 ActReason BTG).
                "purpose_of_use": "BTG",
                "case_submitted_by": case.submitted_by_id,
                "minutes": minutes,
                "expires_at": grant.expires_at.isoformat(),
            },
        )
    return grant


class EmergencyReviewNotPossible(Exception):
    """The access was already reviewed, or the auditor is the person who broke the glass."""


def emergency_access_review(
    *, grant_id: int, reviewer: Any, note: str, actor: Actor, now: datetime | None = None
) -> EmergencyAccess:
    """An auditor marks a break-glass access reviewed, with their own note; audited as
    ``case.emergency_access_reviewed``. Once only, and never by the person who used it."""
    checked = EmergencyReviewInput.model_validate({"note": note})
    with transaction.atomic():
        grant = EmergencyAccess.objects.select_for_update().get(pk=grant_id)
        if grant.reviewed_at is not None:
            raise EmergencyReviewNotPossible(
                f"this access was already reviewed on {grant.reviewed_at:%Y-%m-%d %H:%M} UTC"
            )
        if grant.person_id == reviewer.pk:
            raise EmergencyReviewNotPossible("an access is reviewed by someone other than its user")
        grant.reviewed_by = reviewer
        grant.reviewed_at = now or timezone.now()
        grant.review_note = checked.note
        grant.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
        record(
            actor=actor,
            action=Action.UPDATE,
            code=EMERGENCY_ACCESS_REVIEWED,
            case_id=grant.case_id,
            object_type="emergency_access",
            object_id=str(grant.pk),
            details={"person": grant.person_id, "granted_at": grant.granted_at.isoformat()},
        )
    return grant

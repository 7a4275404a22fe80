"""Writes of the clinical app: submitting cases, issuing keys, demo accounts."""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, acting_as, record
from clinical import encryption, roles
from clinical.authentication import KEY_PREFIX, SCOPES, hash_key
from clinical.models import (
    ApiKey,
    Case,
    CaseStatus,
    ClinicianReview,
    IdempotencyRecord,
    ReviewSource,
)
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
        case_id = str(locked.id)
        transaction.on_commit(lambda: _enqueue(case_id))
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
    record(
        actor=actor,
        action=Action.CREATE,
        code="case.submitted",
        case_id=case.id,
        details={"priority": case.priority, "setting": case_input.setting, "intake": intake},
    )
    case_id = str(case.id)
    transaction.on_commit(lambda: _enqueue(case_id))


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


def case_viewed(*, case: Case, actor: Actor) -> None:
    record(
        actor=actor,
        action=Action.READ,
        code="case.viewed",
        case_id=case.id,
        details={"status": case.status},
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


class KeyRefused(ValueError):
    """An API key setting that cannot be accepted (unknown scope, off-premises callback...)."""


def api_key_settings_check(*, scopes: list[str], callback_url: str) -> None:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise KeyRefused(f"unknown scope(s) {', '.join(unknown)}; expected {', '.join(SCOPES)}")
    if callback_url:
        from reasoning.hosts import EndpointRefused, check_model_endpoint

        try:
            check_model_endpoint(
                callback_url, allowed_hosts=settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS
            )
        except EndpointRefused as exc:
            raise KeyRefused(f"callback URL refused: {exc}") from exc


def api_key_issue(
    *,
    name: str,
    role: str,
    actor: Actor,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    rate_limit_per_min: int | None = None,
    callback_url: str = "",
) -> IssuedKey:
    if role not in roles.ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(roles.ALL_ROLES)}")
    scopes = sorted(set(scopes or []))
    api_key_settings_check(scopes=scopes, callback_url=callback_url)
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=f"key:{name}"[:150], password=None)
        with acting_as(actor):
            roles.grant_role(user, role)
        api_key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            key_hash=hash_key(key),
            user=user,
            scopes=scopes,
            expires_at=expires_at,
            rate_limit_per_min=rate_limit_per_min,
            callback_url=callback_url,
        )
        record(
            actor=actor,
            action=Action.CREATE,
            code="key.issued",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={
                "name": name,
                "role": role,
                "prefix": prefix,
                "scopes": scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "rate_limit_per_min": rate_limit_per_min,
                "callback": bool(callback_url),
            },
        )
    return IssuedKey(api_key=api_key, key=key)


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> bool:
    """Revoke a key at once (the next request with it is refused). False if it already was."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record(
                actor=actor,
                action=Action.UPDATE,
                code="key.revoked",
                object_type="api_key",
                object_id=str(api_key.pk),
                details={"name": api_key.name, "prefix": api_key.prefix},
            )
    api_key.refresh_from_db()
    return bool(revoked)


def api_key_update(*, api_key: ApiKey, actor: Actor, changed: list[str]) -> ApiKey:
    """Save settings changed on a key (the admin page), audited with the field names."""
    api_key_settings_check(scopes=list(api_key.scopes or []), callback_url=api_key.callback_url)
    with transaction.atomic():
        api_key.save()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="key.changed",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={"name": api_key.name, "prefix": api_key.prefix, "fields": sorted(changed)},
        )
    return api_key


def user_ensure(*, username: str, password: str, role: str, actor: Actor) -> Any:
    """Create or reset a person's login with one role (used for the demo accounts)."""
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == roles.ADMIN
        user.is_superuser = role == roles.ADMIN
        # Privilege changes (the role's group, the admin flags) are recorded as
        # `role.changed` by clinical.access_audit, with this actor.
        with acting_as(actor):
            user.save()
            if not user.groups.filter(name=role).exists():
                roles.grant_role(user, role)
    return user


def data_keys_rewrap(*, actor: Actor) -> encryption.RewrapReport:
    """Re-wrap every data key under the current master key (after a master-key rotation),
    audited with the counts and key ids, never a key."""
    with transaction.atomic():
        report = encryption.rewrap_data_keys()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="keys.rewrapped",
            object_type="data_keys",
            details={
                "master_key_id": report.master_key_id,
                "rewrapped": report.rewrapped,
                "already_current": report.already_current,
                "from_master_key_ids": report.from_master_key_ids,
            },
        )
    return report

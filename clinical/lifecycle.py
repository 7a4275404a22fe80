"""A case's life after intake: claimed by a worker, handed back to wait for the model
server, finished with the model's answer or the reason there is none.

The case is claimed and released in short transactions; no transaction is open while
the model answers. Only the holder of the current claim token can record the outcome,
so a case completes exactly once even if its task is delivered twice or its first
worker died and a second took over.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import SYSTEM, record
from clinical.ehr import callbacks, writeback
from clinical.ehr.tasks import send_case_callback_task, send_case_writeback_task
from clinical.models import Case, CaseStatus
from reasoning import prompts
from reasoning import services as reasoning
from reasoning.client import ChatResult, ModelUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    case_id: uuid.UUID
    token: uuid.UUID
    attempt: int
    case_input: dict[str, Any]


@dataclass(frozen=True)
class RunResult:
    """What the task needs to know: done, or try again in ``retry_in`` seconds."""

    status: str
    retry_in: int | None = None


def _backoff(retries: int) -> int:
    return int(
        min(
            settings.BEDSIDE_RETRY_BACKOFF_MAX_S, settings.BEDSIDE_RETRY_BACKOFF_BASE_S * 2**retries
        )
    )


def case_claim(*, case_id: uuid.UUID) -> Claim | RunResult:
    now = timezone.now()
    with transaction.atomic():
        case = Case.objects.select_for_update(skip_locked=True).filter(id=case_id).first()
        if case is None:
            if Case.objects.filter(id=case_id).exists():
                return RunResult("busy", retry_in=5)  # another worker holds the row right now
            logger.warning("run_case: case %s does not exist; dropping the task", case_id)
            return RunResult("missing")
        if case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED):
            return RunResult(case.status)
        if case.status == CaseStatus.RUNNING and case.claimed_until and case.claimed_until > now:
            # Someone is working on it (a duplicate delivery): look again after their lease.
            # Looked at again within the backoff cap: a retry is an unacknowledged message
            # until it runs, and RabbitMQ takes back one held past its consumer timeout.
            lease_left = int((case.claimed_until - now).total_seconds()) + 1
            return RunResult("busy", retry_in=min(lease_left, settings.BEDSIDE_RETRY_BACKOFF_MAX_S))
        if case.attempts >= settings.BEDSIDE_MAX_ATTEMPTS:
            reason = (
                f"gave up after {case.attempts} attempts that ended without an outcome "
                "(the worker was lost each time)"
            )
            _finish_without_run(case, reason)
            return RunResult(CaseStatus.FAILED)
        case.status = CaseStatus.RUNNING
        case.attempts += 1
        case.claim_token = uuid.uuid4()
        case.claimed_until = now + timedelta(seconds=settings.BEDSIDE_CASE_TIMEOUT_S)
        case.started_at = case.started_at or now
        case.next_retry_at = None
        case.status_detail = f"attempt {case.attempts}: the model is answering"
        case.save_progress()
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="run.started",
            case_id=case.id,
            details={"attempt": case.attempts, "retries": case.retries},
        )
        return Claim(case.id, case.claim_token, case.attempts, case.input)


def _finish(case: Case, status: str, detail: str) -> None:
    """Final status; the claim ends with it."""
    case.status = status
    case.status_detail = detail[:500]
    case.finished_at = timezone.now()
    case.claim_token = None
    case.claimed_until = None
    case.save_progress()
    case_id = str(case.id)
    transaction.on_commit(lambda: _announce_finished(case_id))


def _announce_finished(case_id: str) -> None:
    """After the final status is committed: send the case's callback, if its key has one,
    and write its answer back to the EHR, if a hook call with write access asked for it."""
    if callbacks.callback_key_for(case_id) is not None:
        try:
            send_case_callback_task.delay(case_id, 1)
        except Exception:
            # The case itself is safe; only the notice is lost, and the integrator can poll.
            logger.exception("callback for case %s not enqueued", case_id)
    if writeback.writeback_pending(case_id):
        try:
            send_case_writeback_task.delay(case_id, 1)
        except Exception:
            # The next hook call for this patient shows the answer on its card.
            logger.exception("write-back for case %s not enqueued", case_id)


def _finish_without_run(case: Case, reason: str) -> None:
    _finish(case, CaseStatus.FAILED, reason)
    record(
        actor=SYSTEM,
        action=Action.EXECUTE,
        code="run.failed",
        outcome=Outcome.FAILURE,
        case_id=case.id,
        details={"reason": reason[:200], "attempts": case.attempts},
    )


def _locked_claimed_case(claim: Claim) -> Case | None:
    case = Case.objects.select_for_update().get(id=claim.case_id)
    if case.status != CaseStatus.RUNNING or case.claim_token != claim.token:
        logger.warning("case %s: claim %s was superseded; discarding", case.id, claim.token)
        return None
    return case


def case_release_for_retry(*, claim: Claim, reason: str) -> RunResult:
    """The model server could not be reached: back to the queue, or failed when out of tries."""
    with transaction.atomic():
        case = _locked_claimed_case(claim)
        if case is None:
            return RunResult("superseded")
        if case.retries >= settings.BEDSIDE_MODEL_MAX_RETRIES:
            _finish_without_run(
                case, f"model server unavailable after {case.retries + 1} tries: {reason}"
            )
            return RunResult(CaseStatus.FAILED)
        delay = _backoff(case.retries)
        case.retries += 1
        case.attempts = 0  # a clean hand-back is not a lost worker
        case.status = CaseStatus.QUEUED
        case.claim_token = None
        case.claimed_until = None
        case.next_retry_at = timezone.now() + timedelta(seconds=delay)
        case.status_detail = (
            f"waiting for the model server ({reason}); retry {case.retries} of "
            f"{settings.BEDSIDE_MODEL_MAX_RETRIES} at {case.next_retry_at:%H:%M:%S} UTC"
        )[:500]
        case.save_progress()
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="run.retry_scheduled",
            outcome=Outcome.FAILURE,
            case_id=case.id,
            details={"retry": case.retries, "delay_s": delay, "reason": reason[:200]},
        )
        return RunResult("retrying", retry_in=delay)


def case_record_outcome(
    *, claim: Claim, prompt: prompts.RenderedPrompt, result: ChatResult | None, failure: str = ""
) -> RunResult:
    """Check and score what the model said, then save it for this claim."""
    answer = reasoning.answer_assess(
        case_input=claim.case_input, prompt=prompt, result=result, failure=failure
    )
    return case_record_answer(claim=claim, answer=answer)


def case_record_answer(*, claim: Claim, answer: reasoning.Answer) -> RunResult:
    """Save the one ReasoningRun for this claim and move the case to its final status."""
    with transaction.atomic():
        case = _locked_claimed_case(claim)
        if case is None:
            return RunResult("superseded")
        run = reasoning.run_save(case_id=case.id, answer=answer)
        _finish(
            case,
            CaseStatus.COMPLETED if answer.completed else CaseStatus.FAILED,
            "" if answer.completed else answer.failure,
        )
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="run.completed" if answer.completed else "run.failed",
            outcome=Outcome.SUCCESS if answer.completed else Outcome.FAILURE,
            object_type="reasoning_run",
            object_id=str(run.pk),
            case_id=case.id,
            details={
                "confidence": run.confidence,
                "confidence_raw": run.confidence_raw,
                "calibration_id": run.calibration_id,
                "model_revision": run.model_revision,
                "trace_source": run.trace_source,
                "model": run.model_name,
                "prompt_version": run.prompt_version,
                "usable_samples": answer.usable_samples,
                "latency_ms": run.latency_ms,
            },
        )
    return RunResult(case.status)


def case_run(*, case_id: uuid.UUID | str) -> RunResult:
    """Claim the case, ask the model, record the outcome. Safe to call any number of times."""
    claimed = case_claim(case_id=uuid.UUID(str(case_id)))
    if isinstance(claimed, RunResult):
        return claimed
    try:
        answer = reasoning.case_answer(case_input=claimed.case_input)
    except ModelUnavailable as exc:
        return case_release_for_retry(claim=claimed, reason=str(exc))
    return case_record_answer(claim=claimed, answer=answer)

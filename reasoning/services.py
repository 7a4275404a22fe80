"""Running one case through the model: claim it, ask the model, keep what it said.

The case is claimed and released in short transactions; no transaction is open while
the model answers. Only the holder of the current claim token can record the outcome,
so a case completes exactly once even if its task is delivered twice or its first
worker died and a second took over.
"""

from __future__ import annotations

import functools
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
from clinical.models import Case, CaseStatus
from reasoning import prompts
from reasoning.client import (
    ChatResult,
    ModelClient,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
)
from reasoning.confidence import combine
from reasoning.models import ReasoningRun, RunOutcome
from reasoning.parsing import Sample, parse_choice
from reasoning.schemas import response_format

logger = logging.getLogger(__name__)


@functools.cache
def model_client() -> ModelClient:
    """One client per worker process, shared by its threads."""
    return ModelClient(
        settings.BEDSIDE_MODEL_BASE_URL,
        settings.BEDSIDE_MODEL_NAME,
        api_key=settings.BEDSIDE_MODEL_API_KEY,
        timeout_s=settings.BEDSIDE_MODEL_TIMEOUT_S,
    )


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
            return RunResult("busy", retry_in=int((case.claimed_until - now).total_seconds()) + 1)
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
        case.save()
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
    case.save()
    case_id = str(case.id)
    transaction.on_commit(lambda: _announce_finished(case_id))


def _announce_finished(case_id: str) -> None:
    # Imported here: the integration's callback is clinical's business, told after commit.
    from clinical.callbacks import callback_enqueue

    callback_enqueue(case_id)


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
        case.save()
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="run.retry_scheduled",
            outcome=Outcome.FAILURE,
            case_id=case.id,
            details={"retry": case.retries, "delay_s": delay, "reason": reason[:200]},
        )
        return RunResult("retrying", retry_in=delay)


def _sampling_parameters() -> dict[str, Any]:
    return {
        "n": settings.BEDSIDE_SAMPLES,
        "temperature": settings.BEDSIDE_TEMPERATURE,
        "top_p": settings.BEDSIDE_TOP_P,
        "max_tokens": settings.BEDSIDE_MAX_TOKENS,
        "logprobs": True,
    }


def case_record_outcome(
    *, claim: Claim, prompt: prompts.RenderedPrompt, result: ChatResult | None, failure: str = ""
) -> RunResult:
    """Save the one ReasoningRun for this claim and move the case to its final status."""
    samples: list[Sample] = [parse_choice(c) for c in result.completion.choices] if result else []
    parameters = _sampling_parameters()
    confidence = combine(samples, requested=parameters["n"]) if samples else None
    if result is not None and confidence is None:
        reasons = "; ".join(f"sample {s.index}: {s.error}" for s in samples)
        failure = f"no usable sample ({reasons})"
    chosen = next((s for s in samples if confidence and s.index == confidence.chosen_index), None)
    usage = result.completion.usage if result else None
    revision = model_revision()  # an HTTP call: before the row lock, never under it

    with transaction.atomic():
        case = _locked_claimed_case(claim)
        if case is None:
            return RunResult("superseded")
        completed = confidence is not None and chosen is not None
        run = ReasoningRun.objects.create(
            case=case,
            outcome=RunOutcome.COMPLETED if completed else RunOutcome.FAILED,
            failure_reason=failure[:500],
            model_name=result.completion.model if result else settings.BEDSIDE_MODEL_NAME,
            model_revision=revision,
            prompt_version=prompt.version,
            prompt_sha256=prompt.sha256,
            parameters=parameters,
            assessment=chosen.assessment.model_dump(mode="json")
            if chosen and chosen.assessment
            else None,
            reasoning_trace=chosen.trace if chosen else "",
            trace_source=chosen.trace_source.value if chosen else "",
            confidence=confidence.value if confidence else None,
            confidence_method=confidence.method if confidence else "",
            confidence_components=confidence.components if confidence else {},
            samples=[s.summary() for s in samples],
            finish_reasons=[s.finish_reason for s in samples],
            raw_response=result.raw if result else None,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            latency_ms=int(result.latency_s * 1000) if result else 0,
        )
        _finish(
            case,
            CaseStatus.COMPLETED if completed else CaseStatus.FAILED,
            "" if completed else failure,
        )
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="run.completed" if completed else "run.failed",
            outcome=Outcome.SUCCESS if completed else Outcome.FAILURE,
            object_type="reasoning_run",
            object_id=str(run.pk),
            case_id=case.id,
            details={
                "confidence": run.confidence,
                "trace_source": run.trace_source,
                "model": run.model_name,
                "prompt_version": run.prompt_version,
                "usable_samples": sum(1 for s in samples if s.usable),
                "latency_ms": run.latency_ms,
            },
        )
    return RunResult(case.status)


@functools.cache
def _served_model_revision() -> str:
    """The server's own description of the model (id and root), fetched once per process.
    Raises when the server cannot say; exceptions are not cached, so the next run asks again."""
    for card in model_client().models():
        if card.id == settings.BEDSIDE_MODEL_NAME:
            return f"{card.id}@{card.root or ''}|max_model_len={card.max_model_len}"
    return ""


def model_revision() -> str:
    try:
        return _served_model_revision()
    except (ModelUnavailable, ModelRequestRejected, ModelResponseInvalid):
        return ""


def case_run(*, case_id: uuid.UUID | str) -> RunResult:
    """Claim the case, ask the model, record the outcome. Safe to call any number of times."""
    claimed = case_claim(case_id=uuid.UUID(str(case_id)))
    if isinstance(claimed, RunResult):
        return claimed
    prompt = prompts.render(claimed.case_input)
    params = _sampling_parameters()
    try:
        result = model_client().chat(
            messages=prompt.messages(), response_format=response_format(), **params
        )
    except ModelUnavailable as exc:
        return case_release_for_retry(claim=claimed, reason=str(exc))
    except (ModelRequestRejected, ModelResponseInvalid) as exc:
        return case_record_outcome(claim=claimed, prompt=prompt, result=None, failure=str(exc))
    return case_record_outcome(claim=claimed, prompt=prompt, result=result)


def cases_resend_stale(*, older_than_s: int) -> list[uuid.UUID]:
    """Re-send the task of every case that nothing is working on: left `queued` with no
    retry due (the broker was down at commit time, or a message was lost), or `running`
    under a lease that has expired (its worker died and the broker has not redelivered;
    with Redis that waits for the visibility timeout). Duplicates are harmless: claims."""
    from django.db.models import Q

    from reasoning.tasks import run_case_task

    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_s)
    forgotten = Q(status=CaseStatus.QUEUED, updated_at__lt=cutoff) & ~Q(next_retry_at__gte=cutoff)
    abandoned = Q(status=CaseStatus.RUNNING, claimed_until__lt=now)
    stale = list(
        Case.objects.filter(forgotten | abandoned)
        .order_by("created_at")
        .values_list("id", flat=True)[:500]
    )
    for case_id in stale:
        run_case_task.delay(str(case_id))
    if stale:
        logger.warning("re-sent %d case(s) that nothing was working on", len(stale))
    return stale

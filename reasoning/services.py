"""Running one case through the model: claim it, ask the model, keep what it said.

The case is claimed and released in short transactions; no transaction is open while
the model answers. Only the holder of the current claim token can record the outcome,
so a case completes exactly once even if its task is delivered twice or its first
worker died and a second took over.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import SYSTEM, Actor, record
from clinical.models import Case, CaseStatus
from reasoning import calibration as calibration_maps
from reasoning import evaluation, prompts
from reasoning.client import (
    ChatResult,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
)
from reasoning.confidence import combine
from reasoning.grounding import CaseFacts
from reasoning.hosts import model_base_urls
from reasoning.models import (
    Calibration,
    ReasoningRun,
    RunOutcome,
    ServedModel,
    ValidationReport,
)
from reasoning.parsing import Sample, parse_choice
from reasoning.pool import ModelPool
from reasoning.schemas import response_format

logger = logging.getLogger(__name__)


@functools.cache
def model_client() -> ModelPool:
    """One client per worker process, shared by its threads: the model server, or several
    (``BEDSIDE_MODEL_BASE_URL`` comma-separated) with requests spread over those answering."""
    return ModelPool(
        model_base_urls(settings.BEDSIDE_MODEL_BASE_URL),
        settings.BEDSIDE_MODEL_NAME,
        api_key=settings.BEDSIDE_MODEL_API_KEY,
        timeout_s=settings.BEDSIDE_MODEL_TIMEOUT_S,
        cooldown_s=settings.BEDSIDE_MODEL_COOLDOWN_S,
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
    facts = CaseFacts.of(claim.case_input)
    samples: list[Sample] = (
        [parse_choice(c, facts=facts) for c in result.completion.choices] if result else []
    )
    parameters = _sampling_parameters()
    confidence = combine(samples, requested=parameters["n"]) if samples else None
    if result is not None and confidence is None:
        reasons = "; ".join(f"sample {s.index}: {s.error}" for s in samples)
        failure = f"no usable sample ({reasons})"
    chosen = next((s for s in samples if confidence and s.index == confidence.chosen_index), None)
    usage = result.completion.usage if result else None
    revision = model_revision()  # an HTTP call: before the row lock, never under it
    calibration = calibration_for(revision)
    calibrated = (
        calibration_maps.apply(calibration.method, calibration.parameters, confidence.value)
        if calibration is not None and confidence is not None
        else None
    )

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
            confidence=(calibrated if calibrated is not None else confidence.value)
            if confidence
            else None,
            confidence_raw=confidence.value if confidence else None,
            calibration=calibration if calibrated is not None else None,
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
                "confidence_raw": run.confidence_raw,
                "calibration_id": run.calibration_id,
                "model_revision": run.model_revision,
                "trace_source": run.trace_source,
                "model": run.model_name,
                "prompt_version": run.prompt_version,
                "usable_samples": sum(1 for s in samples if s.usable),
                "latency_ms": run.latency_ms,
            },
        )
    return RunResult(case.status)


def revision_of(model_id: str, root: str | None, max_model_len: int | None) -> str:
    """``<id>@<12 hex>``: the id, and a hash of where its weights are and its context length."""
    digest = hashlib.sha256(f"{root or ''}|{max_model_len or ''}".encode()).hexdigest()[:12]
    return f"{model_id}@{digest}"


@functools.cache
def _served_model_revision() -> str:
    """The server's own description of the model, fetched and registered once per process.
    Raises when the server cannot say; exceptions are not cached, so the next run asks again."""
    for card in model_client().models():
        if card.id == settings.BEDSIDE_MODEL_NAME:
            revision = revision_of(card.id, card.root, card.max_model_len)
            ServedModel.objects.update_or_create(
                revision=revision,
                defaults={
                    "model_id": card.id,
                    "root": (card.root or "")[:500],
                    "max_model_len": card.max_model_len,
                },
            )
            return revision
    return ""


def calibration_for(revision: str) -> Calibration | None:
    """The newest calibration fitted on this very model revision; never another's."""
    if not revision:
        return None
    return Calibration.objects.filter(model_revision=revision).select_related("report").first()


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


class EvaluationRefused(Exception):
    """The evaluation or calibration would mix model revisions, or has nothing to work on."""


def evaluation_run(
    *,
    dataset: evaluation.Dataset,
    out_dir: Path | None,
    concurrency: int,
    actor: Actor,
    progress: evaluation.Progress | None = None,
) -> ValidationReport:
    """Run labelled vignettes through the model server and save the report (database row,
    and ``report.json``, ``report.md``, ``reliability.png`` under ``out_dir``)."""
    _served_model_revision.cache_clear()
    revision = model_revision()
    if not revision:
        raise EvaluationRefused(
            f"the model server does not list {settings.BEDSIDE_MODEL_NAME!r} at /v1/models; "
            "a report must name the model revision it measured"
        )
    results, seconds = evaluation.run_items(
        model_client(), dataset, concurrency=concurrency, progress=progress
    )
    _served_model_revision.cache_clear()
    if model_revision() != revision:
        raise EvaluationRefused(
            "the model server changed its model during the evaluation; run it again"
        )
    summary, bins = evaluation.summarise(results)
    title, subtitle = evaluation.report_title(revision, prompts.MCQ_VERSION, dataset)
    png = evaluation.reliability_png(bins, title=title, subtitle=subtitle)
    tokens = sum(r.completion_tokens for r in results)
    summary["seconds_per_item"] = round(seconds / len(results), 2)
    summary["completion_tokens_per_item"] = round(tokens / len(results), 1)
    report = ValidationReport.objects.create(
        model_name=settings.BEDSIDE_MODEL_NAME,
        model_revision=revision,
        prompt_version=prompts.MCQ_VERSION,
        prompt_sha256=prompts.template_sha256(prompts.MCQ_VERSION),
        confidence_method=confidence_method(),
        dataset_name=dataset.name,
        dataset_sha256=dataset.sha256,
        items_total=len(results),
        items_answered=summary["answered"],
        samples_per_item=settings.BEDSIDE_SAMPLES,
        parameters={**evaluation.sampling_parameters(), "concurrency": concurrency},
        metrics=summary,
        bins=bins,
        items=[dataclasses.asdict(r) for r in results],
        seconds_total=round(seconds, 2),
        completion_tokens_total=tokens,
        reliability_png=png,
    )
    record(
        actor=actor,
        action=Action.EXECUTE,
        code="validation.completed",
        object_type="validation_report",
        object_id=str(report.pk),
        details={
            "model_revision": revision,
            "dataset_sha256": dataset.sha256,
            "items": len(results),
            "accuracy": summary["accuracy"],
        },
    )
    if out_dir is not None:
        report_write_files(report, out_dir)
    return report


def confidence_method() -> str:
    from reasoning.confidence import METHOD

    return METHOD


def report_document(report: ValidationReport) -> dict[str, Any]:
    return {
        "id": report.pk,
        "created_at": report.created_at.isoformat(),
        "model": {"name": report.model_name, "revision": report.model_revision},
        "prompt": {"version": report.prompt_version, "sha256": report.prompt_sha256},
        "confidence_method": report.confidence_method,
        "dataset": {"name": report.dataset_name, "sha256": report.dataset_sha256},
        "items_total": report.items_total,
        "items_answered": report.items_answered,
        "samples_per_item": report.samples_per_item,
        "parameters": report.parameters,
        "metrics": report.metrics,
        "reliability_bins": report.bins,
        "seconds_total": report.seconds_total,
        "completion_tokens_total": report.completion_tokens_total,
        "items": report.items,
    }


def report_write_files(report: ValidationReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    document = report_document(report)
    m = report.metrics
    auroc = "undefined (all right or all wrong)" if m["auroc"] is None else f"{m['auroc']:.3f}"
    lines = [
        f"# Validation report {report.pk}",
        "",
        f"- Model: {report.model_name} (revision {report.model_revision})",
        f"- Prompt: {report.prompt_version} (sha256 {report.prompt_sha256})",
        f"- Confidence: {report.confidence_method}, {report.samples_per_item} samples per item",
        f"- Data set: {report.dataset_name} (sha256 {report.dataset_sha256})",
        f"- Items: {report.items_total}, answered {report.items_answered}",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {m['accuracy']:.3f} |",
        f"| Brier score | {m['brier']:.3f} |",
        f"| expected calibration error ({evaluation.BINS} bins) | {m['ece']:.3f} |",
        f"| AUROC of confidence for correctness | {auroc} |",
        f"| mean confidence | {m['mean_confidence']:.3f} |",
        f"| seconds per item | {m['seconds_per_item']} |",
        f"| completion tokens per item | {m['completion_tokens_per_item']} |",
        "",
        "![reliability diagram](reliability.png)",
        "",
    ]
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "reliability.png"]
    paths[0].write_text(json.dumps(document, indent=2, sort_keys=True))
    paths[1].write_text("\n".join(lines))
    paths[2].write_bytes(bytes(report.reliability_png))
    return paths


def calibration_fit(*, report: ValidationReport, method: str, actor: Actor) -> Calibration:
    """Fit a map from raw confidence to observed accuracy on one report. It will apply only
    to runs of the report's model revision."""
    if not report.model_revision:
        raise EvaluationRefused("the report names no model revision; it cannot be used")
    if report.items_total < 2:
        raise EvaluationRefused("a calibration needs at least two validation items")
    confidence = [float(item["confidence"]) for item in report.items]
    correct = [bool(item["correct"]) for item in report.items]
    parameters = calibration_maps.fit(method, confidence, correct)
    with transaction.atomic():
        saved = Calibration.objects.create(
            model_revision=report.model_revision,
            method=method,
            report=report,
            parameters=parameters,
            sample_size=len(confidence),
        )
        record(
            actor=actor,
            action=Action.CREATE,
            code="calibration.fitted",
            object_type="calibration",
            object_id=str(saved.pk),
            details={
                "model_revision": report.model_revision,
                "method": method,
                "report_id": report.pk,
                "items": len(confidence),
            },
        )
    return saved


def latest_report(revision: str) -> ValidationReport | None:
    if not revision:
        return None
    return ValidationReport.objects.filter(model_revision=revision).first()


def calibration_note(run: ReasoningRun) -> str | None:
    """ "On N validation cases, answers at this confidence were right X% of the time",
    from the latest report of the run's own model revision; None when there is none."""
    report = latest_report(run.model_revision)
    raw = run.confidence_raw if run.confidence_raw is not None else run.confidence
    if report is None or raw is None:
        return None
    index = min(int(raw * evaluation.BINS), evaluation.BINS - 1)
    lower = index / evaluation.BINS
    same_bin = [b for b in report.bins if abs(b["lower"] - lower) < 1e-9]
    if not same_bin:
        return (
            f"On {report.items_total} validation cases (report {report.pk}), none had a "
            f"confidence between {lower:.1f} and {lower + 0.1:.1f}; overall "
            f"{report.metrics['accuracy']:.0%} of answers were right."
        )
    b = same_bin[0]
    return (
        f"On {report.items_total} validation cases (report {report.pk}), the {b['count']} "
        f"answers with confidence {lower:.1f} to {lower + 0.1:.1f} were right "
        f"{b['accuracy']:.0%} of the time."
    )

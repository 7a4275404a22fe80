"""The reasoning engine's writes: asking the model about a case and keeping what it said,
validation runs and calibrations.

It knows nothing of cases as rows: the cases app claims a case, asks here for an answer
(``case_answer``), and saves it with ``run_save`` inside its own transaction, beside the
case's new status. No transaction is open while the model answers.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from audit.models import Action
from audit.services import Actor, record
from bedside.hosts import model_base_urls
from reasoning import calibration as calibration_maps
from reasoning import evaluation, prompts, reports
from reasoning.client import (
    ChatResult,
    ModelRequestRejected,
    ModelResponseInvalid,
    ModelUnavailable,
    chat_body,
)
from reasoning.confidence import METHOD, Confidence, combine
from reasoning.facts import case_facts
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
from reasoning.selectors import calibration_for, calibration_summary, validation_note

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


def sampling_parameters() -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "n": settings.BEDSIDE_SAMPLES,
        "temperature": settings.BEDSIDE_TEMPERATURE,
        "top_p": settings.BEDSIDE_TOP_P,
        "max_tokens": settings.BEDSIDE_MAX_TOKENS,
        "logprobs": True,
    }
    if settings.BEDSIDE_MODEL_SEED is not None:
        parameters["seed"] = settings.BEDSIDE_MODEL_SEED
    return parameters


@dataclass(frozen=True)
class Answer:
    """What the model said about one case, parsed, checked and scored; not yet saved."""

    prompt: prompts.RenderedPrompt
    result: ChatResult | None
    failure: str
    parameters: dict[str, Any]
    samples: list[Sample]
    confidence: Confidence | None
    chosen: Sample | None
    revision: str
    calibration: Calibration | None
    calibrated: float | None

    @property
    def completed(self) -> bool:
        return self.confidence is not None and self.chosen is not None

    @property
    def usable_samples(self) -> int:
        return sum(1 for s in self.samples if s.usable)


def answer_assess(
    *,
    case_input: dict[str, Any],
    prompt: prompts.RenderedPrompt,
    result: ChatResult | None,
    failure: str = "",
) -> Answer:
    """Parse every sample, score the confidence and find the calibration in force."""
    facts = case_facts(case_input)
    samples: list[Sample] = (
        [parse_choice(c, facts=facts) for c in result.completion.choices] if result else []
    )
    parameters = sampling_parameters()
    confidence = combine(samples, requested=parameters["n"]) if samples else None
    if result is not None and confidence is None:
        reasons = "; ".join(f"sample {s.index}: {s.error}" for s in samples)
        failure = f"no usable sample ({reasons})"[:500]
    chosen = next((s for s in samples if confidence and s.index == confidence.chosen_index), None)
    revision = model_revision()  # an HTTP call: before any row lock, never under it
    calibration = calibration_for(revision)
    calibrated = (
        calibration_maps.apply(calibration.method, calibration.parameters, confidence.value)
        if calibration is not None and confidence is not None
        else None
    )
    return Answer(
        prompt=prompt,
        result=result,
        failure=failure,
        parameters=parameters,
        samples=samples,
        confidence=confidence,
        chosen=chosen,
        revision=revision,
        calibration=calibration if calibrated is not None else None,
        calibrated=calibrated,
    )


@dataclass(frozen=True)
class CaseRequest:
    """What a worker asks the model about one case: the rendered prompt, and the keyword
    arguments of the model client's ``chat`` (messages, the case's ``response_format``,
    the sampling parameters in force)."""

    prompt: prompts.RenderedPrompt
    chat: dict[str, Any]

    def body(self, model: str) -> dict[str, Any]:
        """The HTTP request's JSON body, exactly as the model client sends it."""
        return chat_body(model=model, **self.chat)


def case_request(*, case_input: dict[str, Any]) -> CaseRequest:
    prompt = prompts.render(case_input)
    return CaseRequest(
        prompt=prompt,
        chat={
            "messages": prompt.messages(),
            "response_format": response_format([f.id for f in case_facts(case_input)]),
            **sampling_parameters(),
        },
    )


def case_answer(*, case_input: dict[str, Any]) -> Answer:
    """Ask the model about one case. Raises ``ModelUnavailable`` when no server answered
    (the caller hands the case back for a retry); a refusal or an unreadable response is
    an answer that failed, with the reason."""
    request = case_request(case_input=case_input)
    try:
        result = model_client().chat(**request.chat)
    except (ModelRequestRejected, ModelResponseInvalid) as exc:
        return answer_assess(
            case_input=case_input, prompt=request.prompt, result=None, failure=str(exc)
        )
    return answer_assess(case_input=case_input, prompt=request.prompt, result=result)


def run_save(*, case_id: uuid.UUID, answer: Answer) -> ReasoningRun:
    """The one ReasoningRun of an answer; called inside the caller's transaction. The
    validation note and the calibration in force are stored with it, as the clinician will
    read them: a report or calibration that comes later does not change what this run said."""
    result, chosen, confidence = answer.result, answer.chosen, answer.confidence
    usage = result.completion.usage if result else None
    note = validation_note(answer.revision, confidence.value if confidence else None)
    return ReasoningRun.objects.create(
        case_id=case_id,
        outcome=RunOutcome.COMPLETED if answer.completed else RunOutcome.FAILED,
        failure_reason=answer.failure[:500],
        model_name=result.completion.model if result else settings.BEDSIDE_MODEL_NAME,
        model_revision=answer.revision,
        prompt_version=answer.prompt.version,
        prompt_sha256=answer.prompt.sha256,
        parameters=answer.parameters,
        # What the clinician is shown: the checked answer; the raw one is in raw_response.
        assessment=chosen.checked.model_dump(mode="json") if chosen and chosen.checked else None,
        reasoning_trace=chosen.trace if chosen else "",
        trace_source=chosen.trace_source.value if chosen else "",
        confidence=(answer.calibrated if answer.calibrated is not None else confidence.value)
        if confidence
        else None,
        confidence_raw=confidence.value if confidence else None,
        calibration=answer.calibration,
        calibration_summary=calibration_summary(answer.calibration)
        if answer.calibration is not None
        else None,
        validation_report=note.report,
        validation_note=note.note,
        validation_words=note.words,
        confidence_method=confidence.method if confidence else "",
        confidence_components=confidence.components if confidence else {},
        samples=[s.summary() for s in answer.samples],
        finish_reasons=[s.finish_reason for s in answer.samples],
        raw_response=result.raw if result else None,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        latency_ms=int(result.latency_s * 1000) if result else 0,
    )


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


def model_revision() -> str:
    try:
        return _served_model_revision()
    except (ModelUnavailable, ModelRequestRejected, ModelResponseInvalid):
        return ""


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
        reports.report_write_files(report, out_dir)
    return report


def confidence_method() -> str:
    return METHOD


def calibration_fit(*, report: ValidationReport, method: str, actor: Actor) -> Calibration:
    """Fit a map from raw confidence to observed accuracy on one report. It will apply only
    to runs of the report's model revision."""
    if not report.model_revision:
        raise EvaluationRefused("the report names no model revision; it cannot be used")
    minimum = settings.BEDSIDE_CALIBRATION_MIN_ITEMS
    if len(report.items) < minimum:
        raise EvaluationRefused(
            f"report {report.pk} has {len(report.items)} validation items; a calibration "
            f"needs at least {minimum} (BEDSIDE_CALIBRATION_MIN_ITEMS)"
        )
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

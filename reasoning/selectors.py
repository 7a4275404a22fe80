"""Reads of the reasoning app used in more than one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from django.conf import settings

from reasoning import evaluation
from reasoning.models import Calibration, ReasoningRun, RunOutcome, ValidationReport


def latest_run(case_id: uuid.UUID) -> ReasoningRun | None:
    """The newest run of a case: the one its answer, status and cards are read from."""
    return ReasoningRun.objects.filter(case_id=case_id).order_by("-created_at", "-pk").first()


def latest_completed_run(case_id: uuid.UUID) -> ReasoningRun | None:
    """The newest run of a case that produced an answer: the one a clinician reviews and a
    card shows (a later failed re-run does not hide it). Its calibration comes with it."""
    return (
        ReasoningRun.objects.filter(case_id=case_id, outcome=RunOutcome.COMPLETED)
        .select_related("calibration")
        .order_by("-created_at", "-pk")
        .first()
    )


def calibration_for(revision: str) -> Calibration | None:
    """The newest calibration fitted on this very model revision, never another's, and on
    at least ``BEDSIDE_CALIBRATION_MIN_ITEMS`` items (one fitted under a lower setting is
    not applied)."""
    if not revision:
        return None
    return (
        Calibration.objects.filter(
            model_revision=revision, sample_size__gte=settings.BEDSIDE_CALIBRATION_MIN_ITEMS
        )
        .select_related("report")
        .first()
    )


def latest_report(revision: str) -> ValidationReport | None:
    if not revision:
        return None
    return ValidationReport.objects.filter(model_revision=revision).first()


NOT_VALIDATED_NOTE = "This model has not been validated on local cases yet."
NOT_RECORDED_NOTE = "Validation note not recorded for this run (before notes were frozen)."


@dataclass(frozen=True)
class ValidationNote:
    """What a run's confidence meant on the validation set when the run finished."""

    report: ValidationReport | None
    note: str  # "On N validation cases (report R), the K answers with confidence ..."
    words: str  # "on N local test questions, answers at this confidence were right 1 in 3 times"


def times_in_words(right: int, count: int) -> str:
    """5 of 7 as "5 in 7"; 13 of 40 as "about 1 in 3" (denominators a reader can picture)."""
    exact = Fraction(right, count)
    simple = exact.limit_denominator(10)
    if count <= 10 or right in (0, count):  # "never" and "every time" stay exact
        return f"{right} in {count}"
    about = "" if simple == exact else "about "
    return f"{about}{simple.numerator} in {simple.denominator}"


def validation_note(revision: str, raw: float | None) -> ValidationNote:
    """How answers at this raw confidence fared in the latest validation report of the
    model revision. Run once, when a run finishes; its text is stored with the run."""
    if raw is None:
        return ValidationNote(report=None, note="", words="")
    report = latest_report(revision)
    if report is None:
        return ValidationNote(
            report=None, note=NOT_VALIDATED_NOTE, words="not yet tested on local questions"
        )
    index = min(int(raw * evaluation.BINS), evaluation.BINS - 1)
    lower = index / evaluation.BINS
    same_bin = [b for b in report.bins if abs(b["lower"] - lower) < 1e-9 and b["count"]]
    questions = f"on {report.items_total} local test questions"
    if not same_bin:
        accuracy = report.metrics["accuracy"]
        return ValidationNote(
            report=report,
            note=(
                f"On {report.items_total} validation cases (report {report.pk}), none had a "
                f"confidence between {lower:.1f} and {lower + 0.1:.1f}; overall "
                f"{accuracy:.0%} of answers were right."
            ),
            words=f"{questions}, no answer had this confidence; {accuracy:.0%} of all were right",
        )
    b = same_bin[0]
    right = round(b["accuracy"] * b["count"])
    return ValidationNote(
        report=report,
        note=(
            f"On {report.items_total} validation cases (report {report.pk}), the {b['count']} "
            f"answers with confidence {lower:.1f} to {lower + 0.1:.1f} were right "
            f"{b['accuracy']:.0%} of the time."
        ),
        words=(
            f"{questions}, answers at this confidence were right "
            f"{times_in_words(right, b['count'])} times"
        ),
    )


def calibration_summary(calibration: Calibration) -> dict[str, Any]:
    """The calibration in force, as a run stores it."""
    return {
        "id": calibration.pk,
        "method": calibration.method,
        "report_id": calibration.report_id,
        "items": calibration.sample_size,
        "fitted_at": calibration.created_at.isoformat(),
    }


def run_calibration(run: ReasoningRun) -> dict[str, Any] | None:
    """The calibration stored with a run; runs from before it was stored name theirs by
    key, fixed when they finished, so that one is read."""
    if run.calibration_summary is not None:
        return run.calibration_summary
    return calibration_summary(run.calibration) if run.calibration is not None else None


def run_validation_note(run: ReasoningRun) -> str:
    """The note stored with a run, never worked out again."""
    return NOT_RECORDED_NOTE if run.validation_note is None else run.validation_note


def usable_samples(samples: list[dict[str, Any]]) -> int:
    """How many of a run's stored samples passed the answer gate and counted."""
    return sum(1 for s in samples if s.get("usable"))


def unusable_reasons(samples: list[dict[str, Any]]) -> list[str]:
    """One line per sample that did not count: its error, else the gate's first reason."""
    lines = []
    for s in samples:
        if s.get("usable"):
            continue
        why = s.get("error") or next(iter(s.get("gate_reasons") or []), "") or "no reason recorded"
        lines.append(f"sample {s.get('index')}: {why}")
    return lines

"""Reads of the reasoning app used in more than one place."""

from __future__ import annotations

import uuid
from typing import Any

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
    """The newest calibration fitted on this very model revision; never another's."""
    if not revision:
        return None
    return Calibration.objects.filter(model_revision=revision).select_related("report").first()


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


def unusable_reasons(samples: list[dict[str, Any]]) -> list[str]:
    """One line per sample that did not count: its error, else the gate's first reason."""
    lines = []
    for s in samples:
        if s.get("usable"):
            continue
        why = s.get("error") or next(iter(s.get("gate_reasons") or []), "") or "no reason recorded"
        lines.append(f"sample {s.get('index')}: {why}")
    return lines

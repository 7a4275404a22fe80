"""Reads for the clinician screens: which cases a person may open, where a case stands,
and how its answer is put into words (the confidence bands are ``reasoning.confidence``'s,
the same the auditor's screens use)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from bedside import roles
from clinical import selectors as clinical_selectors
from clinical.models import Case, CaseStatus, ClinicianReview, EmergencyAccess
from clinical.reasons import plain_label, reason_display
from clinical.schemas import Decision
from reasoning import early_warning as ew
from reasoning import selectors as reasoning_selectors
from reasoning.confidence import band_of
from reasoning.facts import lab_result
from reasoning.models import CalibrationMethod, ReasoningRun, RunOutcome
from reasoning.red_flags import credible_red_flags
from reasoning.schemas import CheckedAssessment

STATUS_WORDS = {
    CaseStatus.QUEUED: "Waiting for the model",
    CaseStatus.RUNNING: "The model is working on this case",
    CaseStatus.COMPLETED: "Answer ready",
    CaseStatus.FAILED: "The model could not answer this case",
}

NOT_VALIDATED_NOTE = reasoning_selectors.NOT_VALIDATED_NOTE
NOT_RECORDED_WORDS = "validation not recorded for this run (before notes were frozen)"


def screen_cases(user: Any) -> QuerySet[Case]:
    """The cases a person may open on these screens: their own; an admin, every case."""
    cases = Case.objects.select_related("submitted_by")
    if roles.ADMIN in roles.roles_of(user):
        return cases
    return cases.filter(submitted_by=user)


def my_cases(user: Any) -> QuerySet[Case]:
    """The person's cases, newest first, each with its latest review's decision and its
    latest answer's confidence (for 'My cases', in the one query)."""
    reviews = ClinicianReview.objects.filter(case=OuterRef("pk")).order_by("-created_at", "-id")
    runs = ReasoningRun.objects.filter(case=OuterRef("pk"), outcome=RunOutcome.COMPLETED).order_by(
        "-created_at", "-pk"
    )
    return (
        Case.objects.filter(submitted_by=user)
        .annotate(
            review_decision=Subquery(reviews.values("decision")[:1]),
            answer_confidence=Subquery(runs.values("confidence")[:1]),
        )
        .order_by("-created_at", "id")
    )


REVIEW_STATE = {
    Decision.ACCEPT: "Accepted",
    Decision.MODIFY: "Modified",
    Decision.REJECT: "Rejected",
}


def review_state(case: Case) -> str:
    """'My cases': where the clinician's review stands ("Not reviewed" once answered)."""
    decision = getattr(case, "review_decision", None)
    if decision:
        return REVIEW_STATE[Decision(decision)]
    return "Not reviewed" if case.status == CaseStatus.COMPLETED else "—"


def case_for(user: Any, case_id: uuid.UUID) -> Case:
    """The case, or 404 when it does not exist or is not this person's to open."""
    case = screen_cases(user).filter(id=case_id).first()
    if case is None:
        raise Http404("no such case")
    return case


@dataclass(frozen=True)
class OpenedCase:
    """What a person may see of a case on these screens: ``case`` None means the case is
    another clinician's and may be opened only with emergency access (the offer page);
    ``emergency`` is the break-glass access it is open under, if any."""

    case_id: uuid.UUID
    case: Case | None
    emergency: EmergencyAccess | None = None
    ended: EmergencyAccess | None = None  # the person's last access to it, now over


def case_opened(user: Any, case_id: uuid.UUID, *, now: dt.datetime | None = None) -> OpenedCase:
    """The case as this person may open it: their own (an admin's: any) as usual; another
    clinician's, for a clinician, only under an emergency access in force at ``now``.
    404 when it does not exist, or the person is no clinician (auditors have their own
    case record)."""
    case = screen_cases(user).filter(id=case_id).first()
    if case is not None:
        return OpenedCase(case_id=case_id, case=case)
    if roles.CLINICIAN not in roles.roles_of(user) or not Case.objects.filter(id=case_id).exists():
        raise Http404("no such case")
    now = now or timezone.now()
    grant = clinical_selectors.emergency_access_active(case_id=case_id, person=user, now=now)
    if grant is None:
        ended = (
            EmergencyAccess.objects.filter(case_id=case_id, person=user, expires_at__lte=now)
            .order_by("-expires_at")
            .first()
        )
        return OpenedCase(case_id=case_id, case=None, ended=ended)
    opened = Case.objects.select_related("submitted_by").get(id=case_id)
    return OpenedCase(case_id=case_id, case=opened, emergency=grant)


def confidence_band(value: float | None) -> str:
    band = band_of(value)
    return "unknown" if band is None else band.value


def calibration_note(run: ReasoningRun) -> str:
    """'On N validation cases, answers at this confidence were right X% of the time', as
    stored when the run finished; never worked out again from a later report."""
    return reasoning_selectors.run_validation_note(run)


def confidence_words(run: ReasoningRun) -> str:
    """The confidence in a line: 'Low — on 40 local test questions, answers at this
    confidence were right 1 in 3 times; 2 of 3 samples usable', from what the run stored."""
    band = band_of(run.confidence)
    words = NOT_RECORDED_WORDS if run.validation_words is None else run.validation_words
    samples = run.samples or []
    usable = reasoning_selectors.usable_samples(samples)
    parts = [p for p in (words, f"{usable} of {len(samples)} samples usable") if p]
    return f"{band.value.capitalize() if band else 'Unknown'} — {'; '.join(parts)}"


def elapsed_seconds(case: Case, now: dt.datetime | None = None) -> int:
    end = case.finished_at if case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED) else None
    end = end or now or timezone.now()
    return max(0, int((end - case.created_at).total_seconds()))


def format_elapsed(seconds: int) -> str:
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def queue_words(case: Case, elapsed_s: int) -> str:
    """A queued case's place and the wait to expect, from recent cases: "2 cases are ahead
    of this one. Recent cases were answered 1:20 after submission (median of the last 20):
    about 0:50 to go." Empty once the case has left the queue."""
    if case.status != CaseStatus.QUEUED:
        return ""
    ahead = clinical_selectors.cases_ahead(case)
    place = {0: "No case is ahead of this one.", 1: "1 case is ahead of this one."}.get(
        ahead, f"{ahead} cases are ahead of this one."
    )
    turnaround = clinical_selectors.recent_turnaround_s(case)
    if turnaround is None:
        return f"{place} No recent answered case to estimate the wait from."
    typical, count = turnaround
    basis = f"(median of the last {count} case{'s' if count != 1 else ''})"
    if typical > elapsed_s:
        return (
            f"{place} Recent cases were answered {format_elapsed(typical)} after submission "
            f"{basis}: about {format_elapsed(typical - elapsed_s)} to go."
        )
    return (
        f"{place} This is taking longer than recent cases, answered "
        f"{format_elapsed(typical)} after submission {basis}."
    )


TAB_TITLES = {
    CaseStatus.QUEUED: "Waiting",
    CaseStatus.RUNNING: "Working",
    CaseStatus.COMPLETED: "✓ Answer ready",
    CaseStatus.FAILED: "✗ No answer",
}


def case_status(case: Case, *, with_queue: bool = False) -> dict[str, Any]:
    """What the status endpoint answers and the page shows: no patient data in it. With
    ``with_queue``, a queued case's place and expected wait (a few queries: the case page
    and its status endpoint ask, a list of cases does not)."""
    elapsed = elapsed_seconds(case)
    return {
        "queue": queue_words(case, elapsed) if with_queue else "",
        "tab_title": TAB_TITLES[CaseStatus(case.status)],
        "status": case.status,
        "label": case.get_status_display(),
        "words": STATUS_WORDS[CaseStatus(case.status)],
        "detail": case.status_detail,
        "elapsed_s": elapsed,
        "elapsed": format_elapsed(elapsed),
        "finished": case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED),
        "attempts": case.attempts,
        "retries": case.retries,
        "next_retry_at": case.next_retry_at.isoformat() if case.next_retry_at else None,
    }


@dataclass(frozen=True)
class ReviewEntry:
    review: ClinicianReview
    latest: bool

    @property
    def reason_display(self) -> str:
        return reason_display(self.review.reason_code) if self.review.reason_code else ""

    @property
    def reason_plain(self) -> str:
        return plain_label(self.review.reason_code) if self.review.reason_code else ""


def answer_verdict(reviews: list[ReviewEntry]) -> ReviewEntry | None:
    """The latest review when it set the model's answer aside (modify or reject): the
    case page marks the answer with it, so no one acts on an overruled suggestion."""
    if reviews and reviews[0].review.decision in (Decision.MODIFY, Decision.REJECT):
        return reviews[0]
    return None


def review_history(case: Case) -> list[ReviewEntry]:
    reviews = list(case.reviews.select_related("reviewer").order_by("-created_at", "-id"))
    return [ReviewEntry(review=r, latest=n == 0) for n, r in enumerate(reviews)]


def sample_reasons(case: Case) -> list[str]:
    """Why each sample of the latest run did not count (the failed page lists them)."""
    run = reasoning_selectors.latest_run(case.id)
    return reasoning_selectors.unusable_reasons(run.samples) if run is not None else []


def failure_reason(case: Case) -> str:
    run = reasoning_selectors.latest_run(case.id)
    reason = run.failure_reason if run is not None and run.failure_reason else case.status_detail
    return reason or "no reason was recorded"


def answer(case: Case) -> dict[str, Any] | None:
    """The completed answer, shaped for the page; None unless the case is completed."""
    if case.status != CaseStatus.COMPLETED:
        return None
    run = reasoning_selectors.latest_completed_run(case.id)
    if run is None or not run.assessment:
        return None
    checked = CheckedAssessment.stored(run.assessment)
    if checked is None:
        return None
    assessment = checked.model_dump(mode="json")
    confidence = run.confidence
    calibration = reasoning_selectors.run_calibration(run)
    return {
        "run": run,
        "differential": assessment["differential"],
        "next_steps": assessment["next_steps"],
        "red_flags": assessment["red_flags"],
        "reasoning_steps": assessment["reasoning_steps"],
        "stated_confidence": assessment["stated_confidence"],
        "legacy": checked.legacy,
        "cited_paths": checked.cited_paths(),
        "samples_usable": reasoning_selectors.usable_samples(run.samples),
        "samples_total": len(run.samples),
        "unusable_reasons": reasoning_selectors.unusable_reasons(run.samples),
        "confidence": confidence,
        "confidence_percent": round(confidence * 100) if confidence is not None else None,
        "confidence_band": confidence_band(confidence),
        "confidence_method": run.confidence_method,
        "confidence_raw": run.confidence_raw,
        "calibration": calibration,
        "calibration_method": CalibrationMethod(calibration["method"]).label.lower()
        if calibration
        else "",
        "calibration_note": calibration_note(run),
        "confidence_words": confidence_words(run),
        "confidence_components": sorted((run.confidence_components or {}).items()),
        "trace": run.reasoning_trace,
        "trace_source": run.trace_source,
    }


def case_summary(case: Case, cited: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The submitted case, as the page lists it back (the validated ``CaseInput``); each
    part carries whether the answer cites it (``cited``: the input field paths), so the
    page can mark what the answer rests on."""
    data = case.input
    vitals = data.get("vitals") or {}
    vitals_shown = [
        (label, vitals[key], unit, f"vitals.{key}" in cited)
        for key, label, unit in (
            ("heart_rate", "Heart rate", "beats/min"),
            ("systolic_bp", "Systolic BP", "mmHg"),
            ("diastolic_bp", "Diastolic BP", "mmHg"),
            ("respiratory_rate", "Respiratory rate", "breaths/min"),
            ("temperature_c", "Temperature", "°C"),
            ("spo2", "SpO₂", "%"),
            ("weight_kg", "Weight", "kg"),
        )
        if vitals.get(key) is not None
    ]

    def listed(field: str) -> list[tuple[Any, bool]]:
        return [(item, f"{field}[{i}]" in cited) for i, item in enumerate(data.get(field) or [])]

    return {
        **data,
        "vitals_shown": vitals_shown,
        "history_shown": listed("past_medical_history"),
        "medications_shown": listed("medications"),
        "allergies_shown": listed("allergies"),
        # Read as a clinician reads a result: "Troponin I: result pending", not "pending ng/mL".
        "labs_shown": [({**lab, "result": lab_result(lab)}, c) for lab, c in listed("labs")],
        "cited": {
            field: any(p == field or p.startswith(f"{field}.") for p in cited)
            for field in ("patient", "chief_complaint", "history_of_present_illness")
        },
    }


def early_warning(case: Case, answer: dict[str, Any] | None) -> dict[str, Any]:
    """The scores Bedside computes from the vitals, for the top of the page, and the plain
    warning when one is high and the model's answer raises no red flag (or there is no
    answer yet, or none at all)."""
    result = ew.early_warning(case.input)
    scores = result["scores"]
    shown = [
        {
            **score,
            "not_recorded": [m["label"] for m in score["missing"] if m["assumed"] is None],
            "assumed": [
                f"{m['label'].lower()} assumed {m['assumed']}"
                for m in score["missing"]
                if m["assumed"] is not None
            ],
        }
        for score in scores
    ]
    warning = ""
    if ew.alert(scores):
        headline = ew.alert_headline(scores)
        if case.status == CaseStatus.COMPLETED and answer is not None:
            if credible_red_flags(answer["red_flags"]):
                warning = f"{headline}: assess the patient now."
            else:
                warning = (
                    f"{headline}: the model's answer raises no red flag. Assess the patient now."
                )
        elif case.status == CaseStatus.FAILED:
            warning = f"{headline}, and the model gave no answer. Assess the patient now."
        else:
            warning = (
                f"{headline}: the model has not answered yet. Assess the patient now; "
                "do not wait for the model."
            )
    return {"scores": shown, "not_scored": result["not_scored"], "warning": warning}

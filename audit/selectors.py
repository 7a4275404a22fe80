"""Reads of the audit trail that grow complex: filtered event lists, the auditor's case
list, a case's whole record, and the figures behind the overview charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Case as CaseWhen
from django.db.models import F, OuterRef, QuerySet, Subquery, Value, When

from audit.models import AuditEvent
from audit.schemas import CONFIDENCE_BANDS, CaseListQuery, ConfidenceBand, EventQuery
from clinical.models import Case, ClinicianReview
from reasoning.models import ReasoningRun, RunOutcome


def events_filtered(query: EventQuery) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(recorded_at__gte=query.since)
    if query.until:
        events = events.filter(recorded_at__lt=query.until)
    if query.actor:
        events = events.filter(actor_label=query.actor)
    if query.code:
        events = events.filter(code=query.code)
    if query.case:
        events = events.filter(case_id=query.case)
    if query.outcome:
        events = events.filter(outcome=query.outcome.value)
    column = query.sort.removeprefix("-")
    descending = query.sort.startswith("-")
    order = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    return events.order_by(order, "-id" if descending else "id")


def _start_of(day: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def cases_for_audit(query: CaseListQuery) -> QuerySet[Case]:
    """Every case with its latest run's model and confidence and its latest review's
    decision, filtered and sorted as the auditor asked."""
    latest_run = ReasoningRun.objects.filter(case=OuterRef("pk")).order_by("-created_at", "-id")
    latest_review = ClinicianReview.objects.filter(case=OuterRef("pk")).order_by(
        "-created_at", "-id"
    )
    cases = Case.objects.annotate(
        submitter=F("submitted_by__username"),
        system=CaseWhen(
            When(submitted_by__api_key__isnull=False, then=Value("api")), default=Value("person")
        ),
        model_name=Subquery(latest_run.values("model_name")[:1]),
        model_revision=Subquery(latest_run.values("model_revision")[:1]),
        confidence=Subquery(latest_run.values("confidence")[:1]),
        decision=Subquery(latest_review.values("decision")[:1]),
    )
    if query.since:
        cases = cases.filter(created_at__gte=_start_of(query.since))
    if query.until:
        cases = cases.filter(created_at__lt=_start_of(query.until) + timedelta(days=1))
    if query.clinician:
        cases = cases.filter(submitted_by__username=query.clinician)
    if query.system:
        cases = cases.filter(submitted_by__api_key__isnull=query.system.value == "person")
    if query.status:
        cases = cases.filter(status=query.status)
    if query.model_revision:
        cases = cases.filter(model_revision=query.model_revision)
    if query.confidence == ConfidenceBand.NONE:
        cases = cases.filter(confidence__isnull=True)
    elif query.confidence:
        low, high = CONFIDENCE_BANDS[query.confidence]
        cases = cases.filter(confidence__gte=low, confidence__lt=high)
    if query.decision == "none":
        cases = cases.filter(decision__isnull=True)
    elif query.decision:
        cases = cases.filter(decision=query.decision)
    column = query.sort.removeprefix("-")
    descending = query.sort.startswith("-")
    order = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
    return cases.order_by(order, "-id" if descending else "id")


def filter_choices() -> dict[str, list[str]]:
    """What the case list's selects offer: submitters and model revisions seen so far."""
    submitters = list(
        Case.objects.order_by().values_list("submitted_by__username", flat=True).distinct()
    )
    revisions = list(
        ReasoningRun.objects.order_by()
        .exclude(model_revision="")
        .values_list("model_revision", flat=True)
        .distinct()
    )
    return {"submitters": sorted(submitters), "model_revisions": sorted(revisions)}


@dataclass(frozen=True)
class CaseRecord:
    """Everything an auditor reads about one case."""

    case: Case
    runs: list[ReasoningRun]
    reviews: list[ClinicianReview]
    events: list[AuditEvent]


def case_record(case: Case) -> CaseRecord:
    return CaseRecord(
        case=case,
        runs=list(case.runs.order_by("created_at", "id")),
        reviews=list(case.reviews.select_related("reviewer").order_by("created_at", "id")),
        events=list(AuditEvent.objects.filter(case_id=case.id).order_by("id")),
    )


# --- figures for the overview charts ---------------------------------------------------------

_LATEST_REVIEWS = """
    SELECT DISTINCT ON (r.case_id)
           r.decision, r.created_at, run.model_revision, run.model_name, run.confidence
      FROM clinical_clinicianreview r
      JOIN reasoning_reasoningrun run ON run.id = r.run_id
     ORDER BY r.case_id, r.created_at DESC, r.id DESC
"""


@dataclass(frozen=True)
class Overview:
    by_revision: list[tuple[str, int, int]]  # revision, reviewed cases, overridden
    by_week: list[tuple[str, int, int]]  # ISO week start, reviewed cases, overridden
    confidence_histogram: list[int]  # completed runs per tenth of confidence
    reliability: list[tuple[float, int, int]]  # bin centre, reviewed cases, accepted
    reviewed: int
    overridden: int
    completed_runs: int


def overview(*, weeks: int = 26) -> Overview:
    """Override = the clinician's latest review of a case modified or rejected the answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH latest AS ({_LATEST_REVIEWS})
            SELECT coalesce(nullif(model_revision, ''), model_name), count(*),
                   count(*) FILTER (WHERE decision <> 'accept')
              FROM latest GROUP BY 1 ORDER BY 1
            """  # noqa: S608 (constant SQL)
        )
        by_revision = [(str(r[0]), int(r[1]), int(r[2])) for r in cursor.fetchall()]
        cursor.execute(
            f"""
            WITH latest AS ({_LATEST_REVIEWS})
            SELECT date_trunc('week', created_at AT TIME ZONE 'UTC')::date, count(*),
                   count(*) FILTER (WHERE decision <> 'accept')
              FROM latest GROUP BY 1 ORDER BY 1 DESC LIMIT %s
            """,  # noqa: S608
            [weeks],
        )
        by_week = [(r[0].isoformat(), int(r[1]), int(r[2])) for r in reversed(cursor.fetchall())]
        cursor.execute(
            """
            SELECT least(width_bucket(confidence, 0, 1, 10), 10), count(*)
              FROM reasoning_reasoningrun
             WHERE outcome = %s AND confidence IS NOT NULL GROUP BY 1
            """,
            [RunOutcome.COMPLETED],
        )
        histogram = [0] * 10
        for bucket, count in cursor.fetchall():
            histogram[max(1, int(bucket)) - 1] += int(count)
        cursor.execute(
            f"""
            WITH latest AS ({_LATEST_REVIEWS})
            SELECT least(width_bucket(confidence, 0, 1, 10), 10), count(*),
                   count(*) FILTER (WHERE decision = 'accept')
              FROM latest WHERE confidence IS NOT NULL GROUP BY 1 ORDER BY 1
            """  # noqa: S608
        )
        reliability = [((int(b) - 0.5) / 10, int(n), int(a)) for b, n, a in cursor.fetchall()]
    return Overview(
        by_revision=by_revision,
        by_week=by_week,
        confidence_histogram=histogram,
        reliability=reliability,
        reviewed=sum(n for _, n, _ in by_revision),
        overridden=sum(o for _, _, o in by_revision),
        completed_runs=sum(histogram),
    )

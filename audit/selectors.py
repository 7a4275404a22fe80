"""Reads of the audit trail that grow complex: filtered event lists, the auditor's case
list, a case's whole record, and the figures behind the overview charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, QuerySet

from audit.models import AuditEvent, CaseFacts
from audit.schemas import NO_CONFIDENCE, CaseListQuery, EventQuery
from bedside import roles
from clinical.models import Case, ClinicianReview
from reasoning.confidence import Band, band_range
from reasoning.models import ReasoningRun

# Columns that may be empty: sorted last either way. The others sort plainly, so that
# PostgreSQL can walk their index in either direction instead of sorting every row.
NULLABLE_FACTS = {"confidence", "decision"}


def _ordering(sort: str, *, tiebreak: str, nullable: set[str]) -> list[Any]:
    column = sort.removeprefix("-")
    descending = sort.startswith("-")
    if column in nullable:
        first: Any = (
            F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_last=True)
        )
    else:
        first = f"-{column}" if descending else column
    if column == tiebreak:
        return [first]
    return [first, f"-{tiebreak}" if descending else tiebreak]


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
    return events.order_by(*_ordering(query.sort, tiebreak="id", nullable={"case_id"}))


def _start_of(day: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def cases_for_audit(query: CaseListQuery) -> QuerySet[CaseFacts]:
    """Every case with its latest run's model and confidence and its latest review's
    decision (kept in ``CaseFacts`` by triggers), filtered and sorted as the auditor asked."""
    cases = CaseFacts.objects.all()
    if query.since:
        cases = cases.filter(created_at__gte=_start_of(query.since))
    if query.until:
        cases = cases.filter(created_at__lt=_start_of(query.until) + timedelta(days=1))
    if query.clinician:
        cases = cases.filter(submitter=query.clinician)
    if query.system:
        cases = cases.filter(system=query.system.value)
    if query.status:
        cases = cases.filter(status=query.status)
    if query.model_revision:
        cases = cases.filter(model_revision=query.model_revision)
    if query.confidence == NO_CONFIDENCE:
        cases = cases.filter(confidence__isnull=True)
    elif isinstance(query.confidence, Band):
        floor, ceiling = band_range(query.confidence)
        cases = cases.filter(confidence__isnull=False)
        if floor is not None:
            cases = cases.filter(confidence__gte=floor)
        if ceiling is not None:
            cases = cases.filter(confidence__lt=ceiling)
    if query.decision == "none":
        cases = cases.filter(decision__isnull=True)
    elif query.decision:
        cases = cases.filter(decision=query.decision)
    return cases.order_by(*_ordering(query.sort, tiebreak="case_id", nullable=NULLABLE_FACTS))


def filter_choices() -> dict[str, list[str]]:
    """What the case list's selects offer: submitters and model revisions seen so far."""
    # People and keys that may submit (a small table), not a scan of every case.
    submitters = list(
        User.objects.filter(groups__name__in=sorted(roles.SUBMITTERS))
        .values_list("username", flat=True)
        .distinct()
    )
    # A loose index scan: one index probe per distinct revision, not a scan of every case.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE revision(value) AS (
                SELECT min(model_revision) FROM audit_casefacts WHERE model_revision <> ''
                UNION ALL
                SELECT (SELECT min(model_revision) FROM audit_casefacts
                         WHERE model_revision > revision.value)
                  FROM revision WHERE revision.value IS NOT NULL
            )
            SELECT value FROM revision WHERE value IS NOT NULL
            """
        )
        revisions = [row[0] for row in cursor.fetchall()]
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


@dataclass(frozen=True)
class Overview:
    by_revision: list[tuple[str, int, int]]  # revision, reviewed cases, overridden
    by_week: list[tuple[str, int, int]]  # ISO week start, reviewed cases, overridden
    confidence_histogram: list[int]  # cases' latest answers per tenth of confidence
    reliability: list[tuple[float, int, int]]  # bin centre, reviewed cases, accepted
    reviewed: int
    overridden: int
    completed_runs: int


def overview(*, weeks: int = 26) -> Overview:
    """Override = the clinician's latest review of a case modified or rejected the answer.
    Read from ``CaseFacts``: one narrow row per case, no join or DISTINCT ON per request."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT coalesce(nullif(model_revision, ''), model_name), count(*),
                   count(*) FILTER (WHERE decision <> 'accept')
              FROM audit_casefacts WHERE decision IS NOT NULL GROUP BY 1 ORDER BY 1
            """
        )
        by_revision = [(str(r[0]), int(r[1]), int(r[2])) for r in cursor.fetchall()]
        cursor.execute(
            """
            SELECT date_trunc('week', reviewed_at AT TIME ZONE 'UTC')::date, count(*),
                   count(*) FILTER (WHERE decision <> 'accept')
              FROM audit_casefacts WHERE decision IS NOT NULL
             GROUP BY 1 ORDER BY 1 DESC LIMIT %s
            """,
            [weeks],
        )
        by_week = [(r[0].isoformat(), int(r[1]), int(r[2])) for r in reversed(cursor.fetchall())]
        cursor.execute(
            """
            SELECT least(width_bucket(confidence, 0, 1, 10), 10), count(*)
              FROM audit_casefacts WHERE confidence IS NOT NULL GROUP BY 1
            """
        )
        histogram = [0] * 10
        for bucket, count in cursor.fetchall():
            histogram[max(1, int(bucket)) - 1] += int(count)
        cursor.execute(
            """
            SELECT least(width_bucket(confidence, 0, 1, 10), 10), count(*),
                   count(*) FILTER (WHERE decision = 'accept')
              FROM audit_casefacts
             WHERE decision IS NOT NULL AND confidence IS NOT NULL GROUP BY 1 ORDER BY 1
            """
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

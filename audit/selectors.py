"""Reads of the audit trail that grow complex: filtered event lists, the auditor's case
list, a case's whole record, and the figures behind the overview charts."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Count, F, Func, IntegerField, Max, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from audit.models import AuditEvent, CaseFacts
from audit.schemas import (
    NO_CONFIDENCE,
    CaseListQuery,
    EmergencyAccessQuery,
    EventQuery,
    InvestigationQuery,
    PeopleQuery,
    SubmittingSystem,
)
from bedside import roles
from bedside.vault.encryption import lookup_hash
from clinical.models import Case, ClinicianReview, EmergencyAccess, ReviewDecision
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


def events_filtered(query: EventQuery, *, partial: bool = False) -> QuerySet[AuditEvent]:
    """The events the query names. ``partial``: the actor and code filters match any part
    of the name, case ignored (the screens: a person types "bob", not "bob.smith"); the API
    keeps its exact match, which walks the (actor, time) and (code, time) indexes."""
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(recorded_at__gte=query.since)
    if query.until:
        events = events.filter(recorded_at__lt=query.until)
    if query.actor:
        if partial:
            events = events.filter(actor_label__icontains=query.actor)
        else:
            events = events.filter(actor_label=query.actor)
    if query.code:
        if partial:
            events = events.filter(code__icontains=query.code)
        else:
            events = events.filter(code=query.code)
    if query.case:
        events = events.filter(case_id=query.case)
    if query.patient:
        events = events.filter(case_id__in=cases_of_patient(query.patient))
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
    if query.system == SubmittingSystem.CDS_HOOKS:
        cases = cases.filter(case_id__in=_cds_hooks_submissions().values("case_id"))
    elif query.system == SubmittingSystem.PERSON:
        # A CDS Hooks case belongs to the clinician the EHR named, but a person did not sign
        # in to submit it: it is the integration's.
        cases = cases.filter(system=query.system.value).exclude(
            case_id__in=_cds_hooks_submissions().values("case_id")
        )
    elif query.system:
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
    if query.overridden:
        cases = cases.filter(case_id__in=ever_overridden_case_ids())
    return cases.order_by(*_ordering(query.sort, tiebreak="case_id", nullable=NULLABLE_FACTS))


# --- investigations: one search across cases and events --------------------------------------

OVERRIDES = (ReviewDecision.MODIFY.value, ReviewDecision.REJECT.value)
INVESTIGATION_CASES = 50  # the cases one search shows; the events below are paginated


def cases_of_patient(patient: str) -> QuerySet[Case, Any]:
    """The ids of the cases a patient id names: the external id, whole and case ignored,
    found by its keyed hash (ids are stored encrypted), or Bedside's own case id."""
    match = Q(external_id_hash=lookup_hash(patient))
    with contextlib.suppress(ValueError):  # not a case id: the external id alone
        match |= Q(id=uuid.UUID(patient))
    return Case.objects.filter(match).values("id")


def ever_overridden_case_ids() -> QuerySet[ClinicianReview, Any]:
    """Cases any review modified or rejected, also when a later review superseded it
    (``CaseFacts.decision`` holds only the latest)."""
    return ClinicianReview.objects.filter(decision__in=OVERRIDES).values("case_id")


@dataclass(frozen=True)
class Viewer:
    label: str
    role: str
    times: int
    last: datetime


@dataclass(frozen=True)
class CaseFinding:
    """One case an investigation found: who viewed it in the range, every override."""

    facts: CaseFacts
    external_id: str
    overrides: list[ClinicianReview]
    viewers: list[Viewer]


@dataclass(frozen=True)
class Investigation:
    cases: list[CaseFinding]
    cases_total: int
    events: QuerySet[AuditEvent]  # newest first


def _events_in_range(query: InvestigationQuery) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(recorded_at__gte=_start_of(query.since))
    if query.until:
        events = events.filter(recorded_at__lt=_start_of(query.until) + timedelta(days=1))
    return events


def investigate(query: InvestigationQuery) -> Investigation:
    """Cases: the patient's (or any), overridden ever if asked, with an event in the range by
    the person / viewed by the viewer / of the code. Events: those of the range by the
    person, of the code (views only, with a viewer), on those cases when a case filter is
    set. Names and codes match partly, case ignored."""
    in_range = _events_in_range(query)
    case_events = in_range.filter(case_id__isnull=False)
    cases = CaseFacts.objects.all()
    if query.patient:
        cases = cases.filter(case_id__in=cases_of_patient(query.patient))
    if query.overridden:
        cases = cases.filter(case_id__in=ever_overridden_case_ids())
    if query.viewed_by:
        views = case_events.filter(code="case.viewed", actor_label__icontains=query.viewed_by)
        cases = cases.filter(case_id__in=views.values("case_id"))
    if query.person:
        by_person = case_events.filter(actor_label__icontains=query.person)
        cases = cases.filter(case_id__in=by_person.values("case_id"))
    if query.code:
        cases = cases.filter(
            case_id__in=case_events.filter(code__icontains=query.code).values("case_id")
        )
    if (query.since or query.until) and not query.patient:
        # A named patient's case is shown even when nobody touched it in the range: that
        # is an answer too. Otherwise the range picks the cases with events in it.
        cases = cases.filter(case_id__in=case_events.values("case_id"))
    cases = cases.order_by("-created_at", "case_id")

    events = in_range
    if query.person:
        events = events.filter(actor_label__icontains=query.person)
    if query.viewed_by:
        events = events.filter(code="case.viewed", actor_label__icontains=query.viewed_by)
    if query.code:
        events = events.filter(code__icontains=query.code)
    if query.patient or query.overridden or query.viewed_by:
        events = events.filter(case_id__in=cases.values("case_id"))

    shown = list(cases[:INVESTIGATION_CASES])
    return Investigation(
        cases=_findings(shown, in_range),
        cases_total=len(shown) if len(shown) < INVESTIGATION_CASES else cases.count(),
        events=events.order_by("-id"),
    )


def _findings(cases: list[CaseFacts], in_range: QuerySet[AuditEvent]) -> list[CaseFinding]:
    ids = [facts.case_id for facts in cases]
    external_ids = dict(Case.objects.filter(id__in=ids).values_list("id", "external_id"))
    overrides: dict[uuid.UUID, list[ClinicianReview]] = {}
    for review in (
        ClinicianReview.objects.filter(case_id__in=ids, decision__in=OVERRIDES)
        .select_related("reviewer")
        .order_by("created_at", "id")
    ):
        overrides.setdefault(review.case_id, []).append(review)
    viewers: dict[uuid.UUID | None, list[Viewer]] = {}
    for row in (
        in_range.filter(code="case.viewed", case_id__in=ids)
        .values("case_id", "actor_label", "role")
        .annotate(times=Count("id"), last=Max("recorded_at"))
        .order_by("-last")
    ):
        viewers.setdefault(row["case_id"], []).append(
            Viewer(label=row["actor_label"], role=row["role"], times=row["times"], last=row["last"])
        )
    return [
        CaseFinding(
            facts=facts,
            external_id=external_ids.get(facts.case_id, ""),
            overrides=overrides.get(facts.case_id, []),
            viewers=viewers.get(facts.case_id, []),
        )
        for facts in cases
    ]


def _cds_hooks_submissions() -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(code="case.submitted", details__intake="cds-hooks")


def submitted_via(case_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """For the cases an EHR submitted through CDS Hooks, the EHR (the issuer it signed its
    call with), from each case's ``case.submitted`` event: the case itself belongs to the
    clinician the EHR named, so its submitter alone reads as a person who signed in."""
    rows = (
        _cds_hooks_submissions().filter(case_id__in=case_ids).values_list("case_id", "actor_label")
    )
    return {case_id: label.removeprefix("cds:") for case_id, label in rows if case_id}


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


def last_verification() -> AuditEvent | None:
    """The latest walk of the chain (screen, API or command), as its ``audit.verified``."""
    return AuditEvent.objects.filter(code="audit.verified").order_by("-id").first()


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
    answered: int  # completed cases
    answered_never_reviewed: int  # completed cases no clinician has reviewed


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
        cursor.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE decision IS NULL)
              FROM audit_casefacts WHERE status = 'completed'
            """
        )
        answered, never_reviewed = cursor.fetchone()
    return Overview(
        by_revision=by_revision,
        by_week=by_week,
        confidence_histogram=histogram,
        reliability=reliability,
        reviewed=sum(n for _, n, _ in by_revision),
        overridden=sum(o for _, _, o in by_revision),
        completed_runs=sum(histogram),
        answered=int(answered),
        answered_never_reviewed=int(never_reviewed),
    )


# --- Break-glass review ---------------------------------------------------------------------


def emergency_accesses(query: EmergencyAccessQuery) -> QuerySet[EmergencyAccess]:
    """Break-glass accesses for the auditors' review list: unreviewed first (oldest grant
    first: the longest waiting), then reviewed ones newest first; each with ``views``, how
    many times its user opened the case while it lasted (``case.viewed`` events)."""
    views = (
        AuditEvent.objects.filter(
            code="case.viewed",
            case_id=OuterRef("case_id"),
            actor_id=OuterRef("person_id"),
            recorded_at__gte=OuterRef("granted_at"),
            recorded_at__lt=OuterRef("expires_at"),
        )
        .order_by()
        .annotate(n=Func(F("id"), function="COUNT"))
        .values("n")
    )
    grants = EmergencyAccess.objects.select_related("case", "person", "reviewed_by").annotate(
        views=Coalesce(Subquery(views, output_field=IntegerField()), 0)
    )
    if query.state == "unreviewed":
        grants = grants.filter(reviewed_at__isnull=True)
    elif query.state == "reviewed":
        grants = grants.filter(reviewed_at__isnull=False)
    return grants.order_by(F("reviewed_at").desc(nulls_first=True), "granted_at", "id")


def emergency_accesses_unreviewed() -> int:
    """How many break-glass accesses wait for an auditor's review (the overview's count)."""
    return EmergencyAccess.objects.filter(reviewed_at__isnull=True).count()


# --- People ----------------------------------------------------------------------------------

# How a person signed in, as ``login.succeeded`` events name it (``details.method``); events
# written before sign-in had several ways carry none: the local password was the only one.
SIGN_IN_METHODS = {
    "local": "Local password",
    "directory": "Hospital directory",
    "sso": "Single sign-on",
}


@dataclass(frozen=True)
class Person:
    user: User
    roles: list[str]
    last_sign_in: datetime | None
    sign_in_method: str  # in words; "" when never signed in


def people(query: PeopleQuery) -> QuerySet[User]:
    """People (not the service users that integration keys act as), by username, with their
    latest successful sign-in's time and details; ``name`` matches part of the username or
    the first or last name, ignoring case."""
    latest = AuditEvent.objects.filter(code="login.succeeded", actor_id=OuterRef("pk")).order_by(
        "-id"
    )
    users = (
        User.objects.filter(api_key__isnull=True)
        .prefetch_related("groups")
        .annotate(
            last_sign_in=Subquery(latest.values("recorded_at")[:1]),
            last_sign_in_details=Subquery(latest.values("details")[:1]),
        )
    )
    if query.name:
        users = users.filter(
            Q(username__icontains=query.name)
            | Q(first_name__icontains=query.name)
            | Q(last_name__icontains=query.name)
        )
    return users.order_by("username", "id")


def person_of(user: User) -> Person:
    """One row of the people screen, from a user of ``people()``."""
    held = sorted({group.name for group in user.groups.all()} & set(roles.ALL_ROLES))
    if user.is_superuser and roles.ADMIN not in held:
        held.append(roles.ADMIN)
    last = getattr(user, "last_sign_in", None)
    method = ""
    if last is not None:
        details = getattr(user, "last_sign_in_details", None) or {}
        named = details.get("method", "local") if isinstance(details, dict) else "local"
        method = SIGN_IN_METHODS.get(str(named), str(named))
    return Person(user=user, roles=held, last_sign_in=last, sign_in_method=method)

"""The auditors' screens: overview charts, the case list and case record, the event list
with its exports, and the chain status. Thin views over selectors and services; every
screen read is itself an audit event."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pydantic import BaseModel, ValidationError

from audit import charts, exports, selectors, services
from audit.actors import actor_for
from audit.models import AuditEvent
from audit.schemas import (
    NO_CONFIDENCE,
    CaseListQuery,
    EmergencyAccessQuery,
    EventQuery,
    InvestigationQuery,
    PeopleQuery,
)
from bedside import roles
from clinical.models import Case, CaseStatus, EmergencyAccess, ReviewDecision
from clinical.reasons import reason_display
from clinical.schemas import EMERGENCY_REASON_MIN
from clinical.screens import presenting
from clinical.services import (
    EmergencyReviewNotPossible,
    case_viewed,
    emergency_access_review,
)
from reasoning import early_warning as ew
from reasoning.confidence import BAND_FLOORS, Band, band_of, band_range

AUDIT_ROLES = {roles.AUDITOR, roles.ADMIN}
PAGE_SIZE = 25
# Validating with the fhir.resources models costs about 1 ms an event (measured at 1M events:
# 1,958 events in 1.8 s): larger ranges go out as CSV, or in several FHIR files.
FHIR_EXPORT_MAX_EVENTS = 5000
CHECKPOINT_MAX_BYTES = 4096  # audit_checkpoint writes about 250

# Key columns first: on a narrow screen the table scrolls sideways, and what identifies a
# case and says whether it was overridden stays in view.
CASE_COLUMNS = (
    ("", "Case"),  # ids are stored encrypted: not sortable
    ("created_at", "Submitted"),
    ("decision", "Review"),
    ("status", "Status"),
    ("confidence", "Confidence"),
    ("priority", "Priority"),
    ("submitter", "Submitted by"),
    ("system", "System"),
    ("model_revision", "Model revision"),
)
EVENT_COLUMNS = (
    ("id", "#"),
    ("recorded_at", "Time (UTC)"),
    ("actor_label", "Actor"),
    ("role", "Role"),
    ("action", "Action"),
    ("code", "Event"),
    ("outcome", "Outcome"),
    ("case_id", "Case"),
    ("", "Details"),
)


def auditor_required(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not roles.roles_of(request.user) & AUDIT_ROLES:
            raise PermissionDenied("only auditors and administrators read the audit trail")
        return view(request, *args, **kwargs)

    return wrapper


def chain_alarm(request: HttpRequest) -> dict[str, Any]:
    """A context processor: for auditors and admins, on every page, the last verification
    of the chain while it is a failure, and the events it found broken (lists flag them)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not roles.roles_of(user) & AUDIT_ROLES:
        return {}
    last = selectors.last_verification()
    if last is None or last.outcome != "failure":
        return {}
    named = last.details.get("broken_ids") or [last.details.get("broken_id")]
    return {
        "chain_alarm": last,
        "chain_broken_ids": {i for i in named if isinstance(i, int)},
    }


def _params(request: HttpRequest, *, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    # QueryDict.items() gives each key's last value (a list only for a key with no values).
    return {
        k: v for k, v in request.GET.items() if isinstance(v, str) and v.strip() and k not in ignore
    }


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "query", "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def _columns(columns: tuple[tuple[str, str], ...], current: str) -> list[dict[str, str]]:
    """Each column header's next sort (click again to reverse) and its aria-sort state."""
    result = []
    for key, label in columns:
        if not key:
            state, next_sort = "", ""
        elif current == key:
            state, next_sort = "ascending", f"-{key}"
        elif current == f"-{key}":
            state, next_sort = "descending", key
        else:
            state, next_sort = "none", key
        result.append({"key": key, "label": label, "aria_sort": state, "next_sort": next_sort})
    return result


def _filters(query: BaseModel) -> dict[str, Any]:
    return query.model_dump(mode="json", exclude_none=True, exclude={"page"})


Q = TypeVar("Q", bound=BaseModel)


def _query(
    request: HttpRequest,
    model: type[Q],
    *,
    ignore: tuple[str, ...] = (),
    defaults: dict[str, str] | None = None,
) -> tuple[Q, list[dict[str, str]]]:
    """The screen's query from the request's parameters, or its defaults and what was wrong."""
    params = _params(request, ignore=ignore)
    for key, value in (defaults or {}).items():
        params.setdefault(key, value)
    try:
        return model.model_validate(params), []
    except ValidationError as exc:
        return model.model_validate(defaults or {}), _errors(exc)


@dataclass
class _Listing(Generic[Q]):
    query: Q
    errors: list[dict[str, str]]
    page: Page | None


def _listing(
    request: HttpRequest,
    model: type[Q],
    *,
    view: str,
    rows: Callable[[Q], QuerySet[Any] | Sequence[Any]],
    shown: Callable[[Page], None] | None = None,
    ignore: tuple[str, ...] = (),
    defaults: dict[str, str] | None = None,
) -> _Listing[Q]:
    """A list screen: its query validated (errors: no page, and nothing read), one page of
    its ``rows``, made ready by ``shown``, and the read recorded as ``view`` with the filters
    and how many rows the page shows. The page is the query's own ``page``, else (a query
    that ignores it) the request's as given."""
    query, errors = _query(request, model, ignore=ignore, defaults=defaults)
    if errors:
        return _Listing(query, errors, None)
    number = getattr(query, "page", None) or request.GET.get("page")
    page = Paginator(rows(query), PAGE_SIZE).get_page(number)
    if shown is not None:
        shown(page)
    services.audit_viewed(
        actor=actor_for(request.user, request),
        view=view,
        filters=_filters(query),
        count=len(page.object_list),
    )
    return _Listing(query, errors, page)


# --- overview ---------------------------------------------------------------------------------


@auditor_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    figures = selectors.overview()
    by_revision = [
        charts.Bar(
            rev,
            over / n if n else 0,
            f"{over} of {n} reviewed cases overridden",
            count=f"{over} of {n}",
        )
        for rev, n, over in figures.by_revision
    ]
    by_week = [
        charts.Bar(
            week,
            over / n if n else 0,
            f"week of {week}: {over} of {n} overridden",
            count=f"{over} of {n}",
        )
        for week, n, over in figures.by_week
    ]
    histogram = [
        charts.Bar(f"{i * 10}-{(i + 1) * 10}%", n, f"{n} answers", count=str(n))
        for i, n in enumerate(figures.confidence_histogram)
    ]
    context = {
        "figures": figures,
        "override_percent": round(100 * figures.overridden / figures.reviewed)
        if figures.reviewed
        else None,
        "chart_by_revision": charts.bar_chart(
            by_revision,
            title="Override rate by model revision",
            description="Share of reviewed cases whose answer the clinician modified or "
            "rejected, for each model revision; above each bar, overridden of reviewed.",
            y_max=1.0,
            x_title="model revision",
            y_title="share of reviewed cases overridden",
        ),
        "chart_by_week": charts.bar_chart(
            by_week,
            title="Override rate by week",
            description="Share of reviewed cases overridden, by the week of the review "
            "(weeks start on Monday, UTC); above each bar, overridden of reviewed.",
            y_max=1.0,
            x_title="week of the review (starting Monday)",
            y_title="share of reviewed cases overridden",
        ),
        "chart_histogram": charts.bar_chart(
            histogram,
            title="Confidence of the model's answers",
            description="How many answered cases (latest answer) fall in each tenth of confidence.",
            fmt=charts.count,
            x_title="the model's confidence",
            y_title="answered cases",
        ),
        "chart_reliability": charts.reliability_plot(
            figures.reliability,
            title="Reliability: confidence against clinician acceptance",
            description="For each tenth of model confidence, the share of reviewed cases "
            "the clinician accepted; the dashed diagonal is perfect calibration.",
        ),
        "reliability_rows": [
            (centre, n, accepted, accepted / n if n else 0)
            for centre, n, accepted in figures.reliability
        ],
    }
    context["emergency_unreviewed"] = selectors.emergency_accesses_unreviewed()
    services.audit_viewed(
        actor=actor_for(request.user, request), view="overview", filters={}, count=figures.reviewed
    )
    return render(request, "audit/overview.html", context)


# --- cases ------------------------------------------------------------------------------------


@auditor_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    listing = _listing(
        request,
        CaseListQuery,
        view="case-list",
        rows=selectors.cases_for_audit,
        shown=_attach_external_ids,
    )
    query, errors = listing.query, listing.errors
    context = {
        "query": query,
        "page": listing.page,
        "errors": errors,
        "columns": _columns(CASE_COLUMNS, query.sort),
        "choices": selectors.filter_choices(),
        "statuses": CaseStatus.choices,
        "decisions": [*ReviewDecision.choices, ("none", "Not reviewed")],
        "bands": [(band.value, _band_label(band)) for _, band in reversed(BAND_FLOORS)]
        + [(NO_CONFIDENCE, "none (no answer)")],
        "active_filters": _filters(query).keys() - {"sort"},
    }
    return render(request, "audit/case_list.html", context, status=400 if errors else 200)


def _band_label(band: Band) -> str:
    floor, ceiling = band_range(band)
    return f"{band.value} ({floor or 0:.0%}-{1 if ceiling is None else ceiling:.0%})"


def _attach_external_ids(page: Page) -> None:
    """The page's external ids, decrypted from the cases themselves (the facts hold a hash),
    and each confidence's band, in the clinician's page's words."""
    rows = list(page.object_list)
    page.object_list = rows
    ids = dict(
        Case.objects.filter(id__in=[f.case_id for f in rows]).values_list("id", "external_id")
    )
    via = selectors.submitted_via([row.case_id for row in rows])
    for row in rows:
        row.external_id = ids.get(row.case_id, "")
        row.confidence_band = band_of(row.confidence)
        row.submitted_via = via.get(row.case_id, "")


def _early_warning_at_intake(case: Case, events: list[AuditEvent]) -> dict[str, Any]:
    """The early-warning scores as the ledger recorded them at intake; for a case submitted
    before they were recorded, as computed now from the input, and labelled so."""
    for event in events:
        if event.code == "case.submitted" and "early_warning" in event.details:
            return {"recorded": True, "event_id": event.id, **event.details["early_warning"]}
    return {"recorded": False, **ew.audit_summary(ew.early_warning(case.input))}


def _timeline(
    request: HttpRequest, events: list[AuditEvent]
) -> tuple[dict[str, str], list[AuditEvent]]:
    """The case's events, newest first, narrowed by the timeline's own filters (part of the
    event code, part of the actor's name, the outcome): a few hundred rows at most."""
    wanted = {key: request.GET.get(key, "").strip()[:150] for key in ("event", "actor", "outcome")}
    shown = [
        event
        for event in reversed(events)
        if wanted["event"].casefold() in event.code.casefold()
        and wanted["actor"].casefold() in event.actor_label.casefold()
        and (not wanted["outcome"] or event.outcome == wanted["outcome"])
    ]
    return wanted, shown


@auditor_required
@require_GET
def case_detail(request: HttpRequest, case_id: str) -> HttpResponse:
    case = get_object_or_404(Case.objects.select_related("submitted_by"), id=case_id)
    services.chain_pending()  # auditors read a linked trail: what has committed, linked
    record = selectors.case_record(case)
    case_viewed(case=case, actor=actor_for(request.user, request))
    answer = presenting.answer(case)
    timeline_filters, timeline = _timeline(request, record.events)
    context = {
        "case": case,
        "record": record,
        "early_warning": _early_warning_at_intake(case, list(record.events)),
        # The answer as the clinician's page showed it, from the same template.
        "answer": answer,
        "calibration_note": answer["calibration_note"] if answer else None,
        "not_validated_note": presenting.NOT_VALIDATED_NOTE,
        "input_json": json.dumps(case.input, indent=2, ensure_ascii=False),
        "runs": [
            {
                "run": run,
                "assessment_json": json.dumps(run.assessment, indent=2, ensure_ascii=False)
                if run.assessment
                else "",
                "parameters_json": json.dumps(run.parameters, sort_keys=True),
                "shown": answer is not None and answer["run"].pk == run.pk,
            }
            for run in record.runs
        ],
        "submitted_via": selectors.submitted_via([case.id]).get(case.id, ""),
        "system": "api" if hasattr(case.submitted_by, "api_key") else "person",
        "timeline": timeline,
        "timeline_filters": timeline_filters,
        "timeline_codes": sorted({event.code for event in record.events}),
        "reviews": [
            (review, reason_display(review.reason_code) if review.reason_code else "")
            for review in record.reviews
        ],
    }
    return render(request, "audit/case_detail.html", context)


# --- investigations ---------------------------------------------------------------------------


@auditor_required
@require_GET
def investigate(request: HttpRequest) -> HttpResponse:
    """One search across cases and events: a patient, a person, a viewer, overrides, a
    range, a code."""
    query, errors = _query(request, InvestigationQuery)
    result = page = None
    if not errors and query.searched:
        result = selectors.investigate(query)
        page = Paginator(result.events, PAGE_SIZE).get_page(query.page)
        services.audit_viewed(
            actor=actor_for(request.user, request),
            view="investigate",
            # The patient id is patient data: the ledger keeps that one was searched for.
            filters={**_filters(query), **({"patient": "(given)"} if query.patient else {})},
            count=len(result.cases) + len(page.object_list),
        )
    context = {"query": query, "result": result, "page": page, "errors": errors}
    return render(request, "audit/investigate.html", context, status=400 if errors else 200)


# --- events and exports -----------------------------------------------------------------------


# The event filters are the exports' too, and validate no page: the list pages by its own.
EVENT_QUERY_IGNORES = ("page",)


def _event_query(request: HttpRequest) -> tuple[EventQuery, list[dict[str, str]]]:
    return _query(request, EventQuery, ignore=EVENT_QUERY_IGNORES)


def _linked_events(query: EventQuery) -> QuerySet[AuditEvent]:
    services.chain_pending()  # auditors read a linked trail: what has committed, linked
    return selectors.events_filtered(query, partial=True)


@auditor_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    listing = _listing(
        request,
        EventQuery,
        view="events",
        rows=_linked_events,
        ignore=EVENT_QUERY_IGNORES,
        defaults={"sort": "-id"},  # newest first
    )
    query, errors = listing.query, listing.errors
    context = {
        "query": query,
        "page": listing.page,
        "errors": errors,
        "columns": _columns(EVENT_COLUMNS, query.sort),
        "fhir_max": FHIR_EXPORT_MAX_EVENTS,
        "export_query": request.GET.urlencode(),
    }
    return render(request, "audit/events.html", context, status=400 if errors else 200)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


@auditor_required
@require_GET
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    query, errors = _event_query(request)
    if errors:
        return _refused_export(request, query, errors)
    services.chain_pending()  # an export carries every committed event's links
    events = selectors.events_filtered(query, partial=True)
    services.export_created(
        actor=actor_for(request.user, request),
        export_format="csv",
        filters=_filters(query),
        count=events.count(),
    )
    response = StreamingHttpResponse(
        exports.csv_lines(events.iterator(chunk_size=2000)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="bedside-audit-{_stamp()}.csv"'
    return response


@auditor_required
@require_GET
def export_fhir(request: HttpRequest) -> HttpResponse:
    query, errors = _event_query(request)
    events: list[AuditEvent] = []
    if not errors:
        services.chain_pending()  # an export carries every committed event's links
        events = list(selectors.events_filtered(query, partial=True)[: FHIR_EXPORT_MAX_EVENTS + 1])
        if len(events) > FHIR_EXPORT_MAX_EVENTS:
            errors = [
                {
                    "field": "since",
                    "msg": f"more than {FHIR_EXPORT_MAX_EVENTS} events: narrow the time range "
                    "(or export CSV)",
                }
            ]
    if errors:
        return _refused_export(request, query, errors)
    bundle = exports.fhir_bundle(events)
    services.export_created(
        actor=actor_for(request.user, request),
        export_format="fhir",
        filters=_filters(query),
        count=len(events),
    )
    response = HttpResponse(json.dumps(bundle, indent=1), content_type="application/fhir+json")
    response["Content-Disposition"] = f'attachment; filename="bedside-audit-{_stamp()}.json"'
    return response


def _refused_export(
    request: HttpRequest, query: EventQuery, errors: list[dict[str, str]]
) -> HttpResponse:
    context = {"errors": errors, "query": query, "page": None, "columns": []}
    return render(request, "audit/events.html", context, status=400)


# --- chain status -----------------------------------------------------------------------------


def _uploaded_checkpoint(request: HttpRequest) -> tuple[services.Checkpoint | None, str]:
    """The checkpoint file the auditor uploaded, checked (signature included), or why not."""
    upload = request.FILES.get("checkpoint")
    if upload is None:
        return None, "choose the checkpoint file that manage.py audit_checkpoint wrote"
    if upload.size is None or upload.size > CHECKPOINT_MAX_BYTES:
        return None, f"a checkpoint file is under {CHECKPOINT_MAX_BYTES} bytes: this is not one"
    try:
        data = json.loads(upload.read())
    except ValueError:
        return None, "the file is not JSON: not a checkpoint"
    if not isinstance(data, dict):
        return None, "not a checkpoint: the file holds no JSON object"
    try:
        return services.checkpoint_load(data, key=settings.BEDSIDE_AUDIT_CHECKPOINT_KEY), ""
    except services.CheckpointInvalid as exc:
        return None, str(exc)


@auditor_required
@require_http_methods(["GET", "POST"])
def chain_status(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user, request)
    report = None
    services.chain_pending()
    errors: list[dict[str, str]] = []
    if request.method == "POST" and request.POST.get("against") == "checkpoint":
        checkpoint, problem = _uploaded_checkpoint(request)
        if checkpoint is None:
            errors = [{"field": "checkpoint", "msg": problem}]
        else:
            report = services.chain_verify_recorded(actor=actor, checkpoint=checkpoint)
    elif request.method == "POST":
        report = services.chain_verify_recorded(actor=actor)
    else:
        services.audit_viewed(actor=actor, view="chain", filters={}, count=0)
    context = {
        "report": report,
        "errors": errors,
        "last_check": selectors.last_verification(),
        "head": AuditEvent.objects.filter(chain_position__isnull=False)
        .order_by("-chain_position")
        .values("id", "recorded_at", "hash")
        .first(),
    }
    return render(request, "audit/chain.html", context, status=400 if errors else 200)


# --- break-glass review -----------------------------------------------------------------------

EMERGENCY_STATES = (
    ("unreviewed", "Waiting for review"),
    ("reviewed", "Reviewed"),
    ("all", "All"),
)


def _emergency_list(
    request: HttpRequest,
    *,
    note_errors: dict[int, list[str]] | None = None,
    notes: dict[int, str] | None = None,
    status: int = 200,
) -> HttpResponse:

    def shown(page: Page) -> None:
        grants: list[Any] = list(page.object_list)
        for grant in grants:  # a refused note comes back next to its own form, as typed
            grant.note_errors = (note_errors or {}).get(grant.pk, [])
            grant.note_value = (notes or {}).get(grant.pk, "")
        page.object_list = grants

    listing = _listing(
        request,
        EmergencyAccessQuery,
        view="emergency-access",
        rows=selectors.emergency_accesses,
        shown=shown,
    )
    errors = listing.errors
    context = {
        "query": listing.query,
        "page": listing.page,
        "errors": errors,
        "states": EMERGENCY_STATES,
        "unreviewed": selectors.emergency_accesses_unreviewed(),
        "refusals": [msg for msgs in (note_errors or {}).values() for msg in msgs],
        "note_min": EMERGENCY_REASON_MIN,
    }
    return render(request, "audit/emergency_access.html", context, status=400 if errors else status)


@auditor_required
@require_GET
def emergency_access_list(request: HttpRequest) -> HttpResponse:
    """Break-glass accesses, those waiting for review first."""
    return _emergency_list(request)


@auditor_required
@require_POST
def emergency_access_reviewed(request: HttpRequest, grant_id: int) -> HttpResponse:
    """An auditor marks one break-glass access reviewed, with their own note."""
    note = request.POST.get("note", "")
    get_object_or_404(EmergencyAccess, pk=grant_id)
    try:
        emergency_access_review(
            grant_id=grant_id,
            reviewer=request.user,
            note=note,
            actor=actor_for(request.user, request),
        )
    except ValidationError as exc:
        messages_ = [str(e["msg"]) for e in exc.errors(include_url=False, include_input=False)]
        return _emergency_list(
            request, note_errors={grant_id: messages_}, notes={grant_id: note}, status=400
        )
    except EmergencyReviewNotPossible as exc:
        return _emergency_list(
            request, note_errors={grant_id: [str(exc)]}, notes={grant_id: note}, status=409
        )
    messages.success(request, "Marked reviewed, with your note. It is listed under Reviewed.")
    back = request.GET.urlencode()
    return redirect(reverse("audit-emergency-access") + (f"?{back}" if back else ""))


# --- people -----------------------------------------------------------------------------------


@auditor_required
@require_GET
def people(request: HttpRequest) -> HttpResponse:
    """Everyone who may sign in: roles, last sign-in and how, active or disabled."""
    listing = _listing(request, PeopleQuery, view="people", rows=selectors.people)
    page, errors = listing.page, listing.errors
    rows = None if page is None else [selectors.person_of(user) for user in page.object_list]
    context = {"query": listing.query, "page": page, "rows": rows, "errors": errors}
    return render(request, "audit/people.html", context, status=400 if errors else 200)

"""The case REST API (DRF): thin views over ``clinical.services``.

Every error leaves as ``{"errors": [{"loc": [...], "msg": "..."}]}`` with a 4xx status;
validation errors never echo the submitted values back (they may be patient data).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import actor_for
from bedside import roles
from bedside.accounts.authentication import key_allows
from bedside.accounts.keys import SCOPE_CASES_EMERGENCY, SCOPE_CASES_READ, SCOPE_CASES_SUBMIT
from bedside.http import openapi
from bedside.http.errors import validation_errors
from bedside.http.pagination import CasePagination
from bedside.http.parsers import FhirJSONParser, StrictJSONParser
from bedside.vault.encryption import lookup_hash
from clinical import openapi as clinical_openapi
from clinical import schemas, services
from clinical import selectors as clinical_selectors
from clinical.ehr import fhir
from clinical.models import Case, CaseStatus, ClinicianReview, EmergencyAccess, ReviewSource
from clinical.reasons import reason_display
from clinical.schemas import CaseInput, EmergencyAccessInput, ReviewInput
from reasoning import early_warning
from reasoning.models import ReasoningRun
from reasoning.schemas import CalibrationSummary, CheckedAssessment
from reasoning.selectors import (
    latest_run,
    run_calibration,
    run_validation_note,
    unusable_reasons,
    usable_samples,
)


class CanSubmitCases(BasePermission):
    message = "your role may not submit cases"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return bool(roles.roles_of(request.user) & roles.CASE_READERS) and key_allows(
                request, SCOPE_CASES_READ
            )
        return bool(roles.roles_of(request.user) & roles.SUBMITTERS) and key_allows(
            request, SCOPE_CASES_SUBMIT
        )


def visible_cases(user: Any) -> QuerySet[Case]:
    """Auditors and admins see every case; clinicians and integrations their own."""
    cases = Case.objects.all()
    if roles.roles_of(user) & roles.READERS_OF_ALL_CASES:
        return cases
    return cases.filter(submitted_by=user)


def run_result(run: ReasoningRun) -> schemas.CaseResult:
    """The run as stored: its calibration and validation note are those in force when it
    finished, never worked out again."""
    calibration = run_calibration(run)
    return schemas.CaseResult(
        assessment=CheckedAssessment.stored(run.assessment),
        reasoning_trace=run.reasoning_trace,
        trace_source=run.trace_source,
        confidence=schemas.Confidence(
            value=run.confidence,
            raw=run.confidence_raw if run.confidence_raw is not None else run.confidence,
            method=run.confidence_method,
            components=run.confidence_components,
            calibration=None
            if calibration is None
            else CalibrationSummary(
                id=calibration["id"],
                method=calibration["method"],
                report_id=calibration["report_id"],
                sample_size=calibration["items"],
            ),
            validation_note=run_validation_note(run) or None,
        ),
        model=schemas.ModelInfo(name=run.model_name, revision=run.model_revision),
        prompt=schemas.PromptInfo(version=run.prompt_version, sha256=run.prompt_sha256),
        usage=schemas.Usage(
            prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens
        ),
        latency_ms=run.latency_ms,
        samples=run.samples,
        samples_usable=usable_samples(run.samples),
        samples_total=len(run.samples),
        unusable_reasons=unusable_reasons(run.samples),
    )


def review_representation(review: ClinicianReview) -> schemas.Review:
    return schemas.Review(
        id=review.pk,
        created_at=review.created_at,
        reviewer=review.reviewer.get_username(),
        decision=review.decision,
        reason_code=review.reason_code,
        reason_display=reason_display(review.reason_code) if review.reason_code else "",
        reason_text=review.reason_text,
        modified_assessment=review.modified_assessment,
        source=review.source,
        run_id=review.run_id,
    )


def _case_fields(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "external_id": case.external_id,
        "priority": case.priority,
        "status": case.status,
        "status_detail": case.status_detail,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "started_at": case.started_at,
        "finished_at": case.finished_at,
        "attempts": case.attempts,
        "retries": case.retries,
        "next_retry_at": case.next_retry_at,
    }


def _case_url(request: Request, case: Case, tail: str = "") -> str:
    return request.build_absolute_uri(f"/api/v1/cases/{case.id}/{tail}")


def case_summary(case: Case, request: Request) -> schemas.CaseSummary:
    return schemas.CaseSummary(
        **_case_fields(case), links=schemas.CaseSummaryLinks(self=_case_url(request, case))
    )


def case_representation(
    case: Case,
    request: Request,
    *,
    fhir_summary: dict[str, Any] | None = None,
    just_submitted: bool = False,
    emergency: EmergencyAccess | None = None,
) -> schemas.Case:
    """``just_submitted``: the case was made by this request, so it has no review yet (one
    query fewer on the intake hot path)."""
    finished = case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED)
    run = latest_run(case.id) if finished else None
    failure_reason = None
    if case.status == CaseStatus.FAILED:
        failure_reason = run.failure_reason if run else case.status_detail
    latest_review = None if just_submitted else case.reviews.select_related("reviewer").first()
    warning = early_warning.early_warning(case.input)
    return schemas.Case(
        **_case_fields(case),
        links=schemas.CaseLinks(
            self=_case_url(request, case), reviews=_case_url(request, case, "reviews/")
        ),
        input=case.input,
        early_warning=warning["scores"],
        early_warning_not_scored=warning["not_scored"],
        early_warning_alert=early_warning.alert(warning["scores"]),
        result=run_result(run) if run and case.status == CaseStatus.COMPLETED else None,
        failure_reason=failure_reason,
        latest_review=review_representation(latest_review) if latest_review else None,
        fhir=fhir_summary,
        access=None
        if emergency is None
        else schemas.CaseAccess(
            kind="emergency", emergency_access_id=emergency.pk, until=emergency.expires_at
        ),
    )


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
CASE_LIST_PARAMETERS = ("status", "external_id", "updated_since", "page", "page_size")
_UPDATED_SINCE: TypeAdapter[datetime] = TypeAdapter(datetime)
# A date and a time, as the OpenAPI document promises: pydantic alone also takes a number
# ("0.5") as seconds since 1970, which no integrator means.
_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
FHIR_PARAMETERS = ("question", "chief_complaint", "priority", "external_id", "encounter_id")


# The FHIR parameters that fill in a case field: checked as that field, whatever the body.
def _field_adapter(field: FieldInfo) -> TypeAdapter[Any]:
    annotation: Any = field.annotation
    return TypeAdapter(Annotated[annotation, *field.metadata] if field.metadata else annotation)


_FHIR_CASE_FIELDS: dict[str, TypeAdapter[Any]] = {
    name: _field_adapter(field)
    for name, field in CaseInput.model_fields.items()
    if name in FHIR_PARAMETERS
}


def _bad_request(loc: list[Any], msg: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"errors": [{"loc": loc, "msg": msg}]}, status=code)


def _fhir_parameter_errors(request: Request) -> list[dict[str, Any]]:
    """A FHIR parameter that is given must be a valid value of the case field it fills in,
    on a JSON submission too (where it is not read): a wrong one is a mistake to report,
    not to ignore. Left out, the Bundle or the default decides."""
    errors = []
    for name, adapter in _FHIR_CASE_FIELDS.items():
        value = request.query_params.get(name)
        if value is None:
            continue
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            errors += [
                {**error, "loc": ["query", name, *error["loc"]]} for error in validation_errors(exc)
            ]
    return errors


def _media_type(request: Request) -> str:
    return (request.content_type or "").split(";")[0].strip().lower()


def _request_sha256(request: Request) -> str:
    """What makes two submissions 'the same body': the parsed body (whitespace and key
    order do not matter), its media type and the FHIR case parameters."""
    canonical = json.dumps(
        {
            "media_type": _media_type(request),
            "body": request.data,
            "params": {name: request.query_params.get(name, "") for name in FHIR_PARAMETERS},
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class CaseListCreate(APIView):
    permission_classes = [CanSubmitCases]
    parser_classes = [StrictJSONParser, FhirJSONParser]

    @extend_schema(
        operation_id="case_submit",
        summary="Submit a case (our JSON, or a FHIR R4 Bundle)",
        description="Validated into `CaseInput`, saved as `queued` and reasoned over "
        "asynchronously: poll `links.self`. A FHIR Bundle (`application/fhir+json`) is read "
        "from its latest encounter; the answer lists the resource types it ignored.",
        request={
            "application/json": CaseInput,
            "application/fhir+json": clinical_openapi.FhirBundle,
        },
        parameters=[clinical_openapi.IDEMPOTENCY_KEY, *clinical_openapi.FHIR_PARAMETERS],
        examples=[clinical_openapi.CASE_EXAMPLE],
        responses={
            202: OpenApiResponse(schemas.Case, description="Accepted and queued."),
            **openapi.errors(400, 401, 403, 409, 413, 415, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        idempotency_key = request.headers.get("Idempotency-Key")
        if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            return _bad_request(
                ["header", "Idempotency-Key"], "must be 1 to 255 visible ASCII characters"
            )
        if parameter_errors := _fhir_parameter_errors(request):
            return Response({"errors": parameter_errors}, status=status.HTTP_400_BAD_REQUEST)
        fhir_summary: dict[str, Any] | None = None
        if _media_type(request) == FhirJSONParser.media_type:
            params = fhir.CaseParameters(
                **{name: request.query_params.get(name, "") for name in FHIR_PARAMETERS}
            )
            try:
                intake = fhir.case_input_from_bundle(request.data, params)
            except fhir.FhirIntakeError as exc:
                # 400 for a Bundle that cannot be read, 422 for one with nothing clinical in it.
                return Response({"errors": exc.errors}, status=exc.status)
            case_input, fhir_summary, source = intake.case_input, intake.summary(), "fhir"
        elif isinstance(request.data, dict) and request.data.get("resourceType") == "Bundle":
            # CaseInput's errors ("patient: field required", ...) would not say what is wrong.
            return _bad_request(
                ["header", "Content-Type"],
                "the body is a FHIR Bundle: send it as Content-Type: application/fhir+json "
                "(application/json is read as Bedside's own case JSON, CaseInput)",
            )
        else:
            try:
                case_input = CaseInput.model_validate(request.data)
            except ValidationError as exc:
                return Response(
                    {"errors": validation_errors(exc)}, status=status.HTTP_400_BAD_REQUEST
                )
            source = "json"
        actor = actor_for(request.user, request)
        headers: dict[str, str] = {}
        just_submitted = True
        if idempotency_key is None:
            case = services.case_submit(
                case_input=case_input, actor=actor, submitted_by=request.user, intake=source
            )
        else:
            try:
                submission = services.case_submit_once(
                    case_input=case_input,
                    actor=actor,
                    submitted_by=request.user,
                    idempotency_key=idempotency_key,
                    body_sha256=_request_sha256(request),
                    intake=source,
                )
            except services.IdempotencyConflict as exc:
                return _bad_request(
                    ["header", "Idempotency-Key"], str(exc), status.HTTP_409_CONFLICT
                )
            case = submission.case
            just_submitted = not submission.replayed  # a replayed case may have been reviewed
            headers["Idempotent-Replayed"] = "true" if submission.replayed else "false"
        body = case_representation(
            case, request, fhir_summary=fhir_summary, just_submitted=just_submitted
        )
        headers["Location"] = body.links.self
        return Response(body.as_json(), status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        operation_id="case_list",
        summary="List the cases this user may see, newest first",
        parameters=clinical_openapi.LIST_PARAMETERS,
        responses={
            200: schemas.CasePage,
            **openapi.errors(400, 401, 403, 429),
            **openapi.PAGE_NOT_FOUND,
        },
    )
    def get(self, request: Request) -> Response:
        # A filter Bedside does not know would silently list every case: refused, named.
        unknown = sorted(set(request.query_params) - set(CASE_LIST_PARAMETERS))
        if unknown:
            return Response(
                {
                    "errors": [
                        {
                            "loc": ["query", name],
                            "msg": "unknown filter; the case list takes "
                            + ", ".join(CASE_LIST_PARAMETERS),
                        }
                        for name in unknown
                    ]
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        cases = visible_cases(request.user)
        updated_since = request.query_params.get("updated_since")
        if updated_since is not None:
            try:
                if not _ISO_DATE_TIME.match(updated_since):
                    raise ValueError(updated_since)
                since = _UPDATED_SINCE.validate_python(updated_since)
                # In UTC before it reaches PostgreSQL, which refuses offsets past ±15:59.
                since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
            except (ValidationError, ValueError, OverflowError):
                return _bad_request(
                    ["query", "updated_since"],
                    "must be an ISO 8601 date-time, e.g. 2026-11-30T16:00:00Z (UTC when no zone)",
                )
            cases = cases.filter(updated_at__gte=since)
        status_filter = request.query_params.get("status")
        # Given but empty is not one of the four statuses: refused, not read as "any".
        if status_filter is not None:
            if status_filter not in CaseStatus.values:
                return Response(
                    {"errors": [{"loc": ["query", "status"], "msg": "unknown status"}]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            cases = cases.filter(status=status_filter)
        external_id = request.query_params.get("external_id")
        if external_id:
            cases = cases.filter(external_id_hash=lookup_hash(external_id))
        paginator = CasePagination()
        page = paginator.paginate_queryset(cases.order_by("-created_at", "id"), request, view=self)
        assert page is not None
        services.cases_listed(
            actor=actor_for(request.user, request),
            count=len(page),
            filters={
                "status": status_filter or None,
                "external_id": bool(external_id),
                "updated_since": updated_since,
            },
        )
        return Response(
            schemas.CasePage(
                count=paginator.total(),
                next=paginator.get_next_link(),
                previous=paginator.get_previous_link(),
                results=[case_summary(case, request) for case in page],
            ).model_dump(mode="json")
        )


class CaseDetail(APIView):
    permission_classes = [CanSubmitCases]

    @extend_schema(
        operation_id="case_detail",
        summary="One case: status, input, and when completed the answer, trace, confidence",
        responses={200: schemas.Case, **openapi.errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, case_id: str) -> Response:
        case = visible_cases(request.user).filter(id=case_id).first()
        emergency = None
        if case is None:
            # Another submitter's case: only under break-glass access in force now.
            emergency = clinical_selectors.emergency_access_active(
                case_id=case_id, person=request.user
            )
            if emergency is None:
                # As get_object_or_404 words it: no hint that the case exists.
                raise Http404("No Case matches the given query.")
            case = emergency.case
        services.case_viewed(
            case=case, actor=actor_for(request.user, request), emergency_access=emergency
        )
        return Response(case_representation(case, request, emergency=emergency).as_json())


class CanReview(BasePermission):
    message = "only clinicians record reviews"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return bool(roles.roles_of(request.user) & roles.CASE_READERS) and key_allows(
                request, SCOPE_CASES_READ
            )
        return roles.CLINICIAN in roles.roles_of(request.user)


class CaseReviews(APIView):
    """A case's reviews, newest first; a clinician appends one (accept / modify / reject)."""

    permission_classes = [CanReview]

    @extend_schema(
        operation_id="case_reviews",
        summary="A case's clinician reviews, newest first",
        responses={200: schemas.ReviewList, **openapi.errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(visible_cases(request.user), id=case_id)
        reviews = list(case.reviews.select_related("reviewer"))
        services.reviews_viewed(
            case=case, actor=actor_for(request.user, request), count=len(reviews)
        )
        body = schemas.ReviewList(results=[review_representation(r) for r in reviews])
        return Response(body.model_dump(mode="json"))

    @extend_schema(
        operation_id="case_review_record",
        summary="Accept, modify or reject the model's answer (clinicians)",
        description="`modify` and `reject` need a CDS Hooks non-adherence reason code and the "
        "reason in words; `modify` carries the clinician's own differential or plan. A later "
        "review supersedes an earlier one. 409 while the case has no completed answer.",
        request={"application/json": ReviewInput},
        responses={201: schemas.Review, **openapi.errors(400, 401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(visible_cases(request.user), id=case_id)
        try:
            review_input = ReviewInput.model_validate(request.data)
        except ValidationError as exc:
            return Response({"errors": validation_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
        try:
            review = services.review_record(
                case=case,
                review=review_input,
                actor=actor_for(request.user, request),
                reviewer=request.user,
                source=ReviewSource.API,
            )
        except services.ReviewNotPossible as exc:
            return Response(
                {"errors": [{"loc": ["case", "status"], "msg": str(exc)}]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            review_representation(review).model_dump(mode="json"), status=status.HTTP_201_CREATED
        )


class CaseRerun(APIView):
    """Run a failed case again (e.g. after every sample ignored the case or was cut off)."""

    permission_classes = [CanSubmitCases]

    @extend_schema(
        operation_id="case_rerun",
        summary="Run a failed case again (its submitter)",
        description="Only a `failed` case is re-run (409 otherwise); its failed run stays on "
        "record beside the new one.",
        request=None,
        responses={202: schemas.Case, **openapi.errors(401, 403, 404, 409, 429)},
    )
    def post(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(visible_cases(request.user), id=case_id)
        try:
            case = services.case_rerun(case=case, actor=actor_for(request.user, request))
        except services.RerunNotPossible as exc:
            return Response(
                {"errors": [{"loc": ["case", "status"], "msg": str(exc)}]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            case_representation(case, request).as_json(), status=status.HTTP_202_ACCEPTED
        )


class MayBreakGlass(BasePermission):
    """Clinicians (signed in), and integration keys issued with ``cases:emergency`` named:
    a key issued with no scopes does not hold it (``bedside.accounts.keys.EXPLICIT_SCOPES``)."""

    message = "emergency access needs a clinician, or an API key issued with cases:emergency"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(roles.roles_of(request.user) & roles.SUBMITTERS) and key_allows(
            request, SCOPE_CASES_EMERGENCY
        )


def emergency_access_representation(
    grant: EmergencyAccess, request: Request
) -> schemas.EmergencyAccessGrant:
    return schemas.EmergencyAccessGrant(
        id=grant.pk,
        case_id=grant.case_id,
        person=grant.person.get_username(),
        reason=grant.reason,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        links=schemas.EmergencyAccessLinks(case=_case_url(request, grant.case)),
    )


class CaseEmergencyAccess(APIView):
    """Break-glass: read another submitter's case for a while, for a stated reason."""

    permission_classes = [MayBreakGlass]

    @extend_schema(
        operation_id="case_emergency_access",
        summary="Emergency (break-glass) access to a case that is not yours",
        description="For `BEDSIDE_EMERGENCY_ACCESS_MINUTES` (default 60) after this call, "
        "`GET /api/v1/cases/{id}/` answers this caller with the case, its `access` saying "
        "`emergency` and until when; read only (reviews stay the submitter's). Audited as "
        "`case.emergency_access`, every read during it as `case.viewed` naming the grant, "
        "and listed for an auditor's review. Clinicians, and API keys issued with the "
        "`cases:emergency` scope named (a key issued with no scopes does not hold it). "
        "409 for the caller's own case.",
        request={"application/json": EmergencyAccessInput},
        responses={
            201: OpenApiResponse(schemas.EmergencyAccessGrant, description="Granted."),
            **openapi.errors(400, 401, 403, 404, 409, 429),
        },
    )
    def post(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(Case.objects.select_related("submitted_by"), id=case_id)
        try:
            checked = EmergencyAccessInput.model_validate(request.data)
        except ValidationError as exc:
            return Response({"errors": validation_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
        if visible_cases(request.user).filter(id=case.id).exists():
            return _bad_request(
                ["case"],
                "this case is already yours to read: emergency access is for another "
                "submitter's case",
                status.HTTP_409_CONFLICT,
            )
        try:
            grant = services.emergency_access_grant(
                case=case,
                person=request.user,
                reason=checked.reason,
                actor=actor_for(request.user, request),
            )
        except services.EmergencyAccessRefused as exc:
            return _bad_request(["case"], str(exc), status.HTTP_409_CONFLICT)
        return Response(
            emergency_access_representation(grant, request).model_dump(mode="json"),
            status=status.HTTP_201_CREATED,
        )

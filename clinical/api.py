"""The case REST API (DRF): thin views over ``clinical.services``.

Every error leaves as ``{"errors": [{"loc": [...], "msg": "..."}]}`` with a 4xx status;
validation errors never echo the submitted values back (they may be patient data).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from pydantic import ValidationError
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from clinical import roles, services
from clinical.models import Case, CaseStatus, ClinicianReview, ReviewSource
from clinical.reasons import reason_display
from clinical.schemas import CaseInput, ReviewInput
from reasoning.models import ReasoningRun


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, APIException):
        detail = exc.detail
        if isinstance(detail, dict):
            errors = [
                {"loc": [field], "msg": str(msg[0] if isinstance(msg, list) else msg)}
                for field, msg in detail.items()
            ]
        elif isinstance(detail, list):
            errors = [{"loc": [], "msg": str(msg)} for msg in detail]
        else:
            errors = [{"loc": [], "msg": str(detail)}]
        response.data = {"errors": errors}
    return response


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


class CasePagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


class CanSubmitCases(BasePermission):
    message = "your role may not submit cases"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return bool(roles.roles_of(request.user) & roles.CASE_READERS)
        return bool(roles.roles_of(request.user) & roles.SUBMITTERS)


def visible_cases(user: Any) -> QuerySet[Case]:
    """Auditors and admins see every case; clinicians and integrations their own."""
    cases = Case.objects.all()
    if roles.roles_of(user) & roles.READERS_OF_ALL_CASES:
        return cases
    return cases.filter(submitted_by=user)


def latest_run(case: Case) -> ReasoningRun | None:
    return case.runs.order_by("-created_at", "-id").first()


def run_result(run: ReasoningRun) -> dict[str, Any]:
    return {
        "assessment": run.assessment,
        "reasoning_trace": run.reasoning_trace,
        "trace_source": run.trace_source,
        "confidence": {
            "value": run.confidence,
            "raw": run.confidence,
            "method": run.confidence_method,
            "components": run.confidence_components,
        },
        "model": {"name": run.model_name, "revision": run.model_revision},
        "prompt": {"version": run.prompt_version, "sha256": run.prompt_sha256},
        "usage": {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
        },
        "latency_ms": run.latency_ms,
        "samples": run.samples,
    }


def review_representation(review: ClinicianReview) -> dict[str, Any]:
    return {
        "id": review.pk,
        "created_at": review.created_at.isoformat(),
        "reviewer": review.reviewer.get_username(),
        "decision": review.decision,
        "reason_code": review.reason_code,
        "reason_display": reason_display(review.reason_code) if review.reason_code else "",
        "reason_text": review.reason_text,
        "modified_assessment": review.modified_assessment,
        "source": review.source,
        "run_id": review.run_id,
    }


def case_representation(case: Case, request: Request, *, full: bool) -> dict[str, Any]:
    url = request.build_absolute_uri(f"/api/v1/cases/{case.id}/")
    data: dict[str, Any] = {
        "id": str(case.id),
        "external_id": case.external_id,
        "priority": case.priority,
        "status": case.status,
        "status_detail": case.status_detail,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
        "started_at": case.started_at.isoformat() if case.started_at else None,
        "finished_at": case.finished_at.isoformat() if case.finished_at else None,
        "attempts": case.attempts,
        "retries": case.retries,
        "next_retry_at": case.next_retry_at.isoformat() if case.next_retry_at else None,
        "links": {"self": url},
    }
    if full:
        data["input"] = case.input
        run = latest_run(case) if case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED) else None
        data["result"] = run_result(run) if run and case.status == CaseStatus.COMPLETED else None
        data["failure_reason"] = (
            (run.failure_reason if run else case.status_detail)
            if case.status == CaseStatus.FAILED
            else None
        )
        latest_review = case.reviews.select_related("reviewer").first()
        data["latest_review"] = review_representation(latest_review) if latest_review else None
        data["links"]["reviews"] = request.build_absolute_uri(f"/api/v1/cases/{case.id}/reviews/")
    return data


class CaseListCreate(APIView):
    permission_classes = [CanSubmitCases]

    def post(self, request: Request) -> Response:
        try:
            case_input = CaseInput.model_validate(request.data)
        except ValidationError as exc:
            return Response({"errors": validation_errors(exc)}, status=status.HTTP_400_BAD_REQUEST)
        case = services.case_submit(
            case_input=case_input,
            actor=services.actor_for(request.user, request),
            submitted_by=request.user,
        )
        body = case_representation(case, request, full=True)
        return Response(
            body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["links"]["self"]}
        )

    def get(self, request: Request) -> Response:
        cases = visible_cases(request.user)
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in CaseStatus.values:
                return Response(
                    {"errors": [{"loc": ["query", "status"], "msg": "unknown status"}]},
                    status=status.HTTP_400_BAD_REQUEST,
                )
            cases = cases.filter(status=status_filter)
        external_id = request.query_params.get("external_id")
        if external_id:
            cases = cases.filter(external_id=external_id)
        paginator = CasePagination()
        page = paginator.paginate_queryset(cases.order_by("-created_at", "id"), request, view=self)
        assert page is not None
        services.cases_listed(
            actor=services.actor_for(request.user, request),
            count=len(page),
            filters={"status": status_filter or None, "external_id": bool(external_id)},
        )
        return paginator.get_paginated_response(
            [case_representation(case, request, full=False) for case in page]
        )


class CaseDetail(APIView):
    permission_classes = [CanSubmitCases]

    def get(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(visible_cases(request.user), id=case_id)
        services.case_viewed(case=case, actor=services.actor_for(request.user, request))
        return Response(case_representation(case, request, full=True))


class CanReview(BasePermission):
    message = "only clinicians record reviews"

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method != "POST":
            return bool(roles.roles_of(request.user) & roles.CASE_READERS)
        return roles.CLINICIAN in roles.roles_of(request.user)


class CaseReviews(APIView):
    """A case's reviews, newest first; a clinician appends one (accept / modify / reject)."""

    permission_classes = [CanReview]

    def get(self, request: Request, case_id: str) -> Response:
        case = get_object_or_404(visible_cases(request.user), id=case_id)
        reviews = list(case.reviews.select_related("reviewer"))
        services.reviews_viewed(
            case=case, actor=services.actor_for(request.user, request), count=len(reviews)
        )
        return Response({"results": [review_representation(r) for r in reviews]})

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
                actor=services.actor_for(request.user, request),
                reviewer=request.user,
                source=ReviewSource.API,
            )
        except services.ReviewNotPossible as exc:
            return Response(
                {"errors": [{"loc": ["case", "status"], "msg": str(exc)}]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(review_representation(review), status=status.HTTP_201_CREATED)

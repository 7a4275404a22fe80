"""CDS Hooks endpoints (thin: the work is in ``clinical.ehr.cds_hooks``)."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bedside.http import openapi
from clinical.ehr import cds_hooks
from clinical.models import Case

# The EHR authenticates each call with its JWT (cds_hooks.authenticate_ehr), not with a
# Bedside key or session; discovery is public (it holds no patient data).
_NO_DRF_AUTH: dict[str, Any] = {"authentication_classes": [], "permission_classes": [AllowAny]}
SERVICE_ID = OpenApiParameter(
    "service_id", str, OpenApiParameter.PATH, enum=sorted(cds_hooks.SERVICES)
)


def _errors(exc: cds_hooks.HookError) -> Response:
    return Response({"errors": exc.errors}, status=exc.status)


def _service(service_id: str) -> cds_hooks.Service:
    service = cds_hooks.SERVICES.get(service_id)
    if service is None:
        raise cds_hooks.HookError(404, [{"loc": ["path", "id"], "msg": "no such CDS service"}])
    return service


def _case_link(request: Request) -> Any:
    def link(case: Case) -> str:
        try:
            path = reverse("case-page", args=[case.id])
        except NoReverseMatch:  # no case page in this build: the API's view of the case
            path = reverse("case-detail", args=[case.id])
        return request.build_absolute_uri(path)

    return link


def _ehr(request: Request) -> tuple[str, Any]:
    issuer = cds_hooks.authenticate_ehr(
        request.headers.get("Authorization", ""), request.build_absolute_uri(request.path)
    )
    return issuer, cds_hooks.ehr_user(issuer)


class Discovery(APIView):
    authentication_classes = _NO_DRF_AUTH["authentication_classes"]
    permission_classes = _NO_DRF_AUTH["permission_classes"]

    @extend_schema(
        operation_id="cds_discovery",
        summary="CDS Hooks discovery: Bedside's services and their prefetch templates",
        tags=["cds-hooks"],
        auth=[],
        responses={200: openapi.ref("CdsDiscovery")},
    )
    def get(self, request: Request) -> Response:
        return Response(cds_hooks.discovery())


class HookCall(APIView):
    authentication_classes = _NO_DRF_AUTH["authentication_classes"]
    permission_classes = _NO_DRF_AUTH["permission_classes"]

    @extend_schema(
        operation_id="cds_hook_call",
        summary="A CDS Hooks call: queues the assessment, answers at once with cards",
        description="A finished assessment for the same patient and record comes back as a "
        "card; otherwise an info card says it is running (the next call gets the result).",
        tags=["cds-hooks"],
        # A security requirement object, which OpenAPI allows and the stubs do not know.
        auth=[{"ehrJwt": []}],  # type: ignore[list-item]
        parameters=[SERVICE_ID],
        request={"application/json": openapi.ref("CdsHookRequest")},
        responses={
            200: OpenApiResponse(openapi.ref("CdsHookResponse")),
            **openapi.errors(400, 401, 404, 412, 422),
        },
    )
    def post(self, request: Request, service_id: str) -> Response:
        try:
            service = _service(service_id)
            issuer, user = _ehr(request)
            try:
                hook = cds_hooks.HookRequest.model_validate(request.data)
            except ValidationError as exc:
                raise cds_hooks.HookError(400, cds_hooks.pydantic_errors(exc)) from exc
            answer = cds_hooks.hook_call(
                service=service,
                hook=hook,
                user=user,
                issuer=issuer,
                actor=cds_hooks.ehr_actor(user, issuer, request),
                case_link=_case_link(request),
            )
        except cds_hooks.HookError as exc:
            return _errors(exc)
        return Response({"cards": answer.cards})


class HookFeedback(APIView):
    authentication_classes = _NO_DRF_AUTH["authentication_classes"]
    permission_classes = _NO_DRF_AUTH["permission_classes"]

    @extend_schema(
        operation_id="cds_feedback",
        summary="CDS Hooks feedback: accepted or overridden cards become clinician reviews",
        tags=["cds-hooks"],
        # A security requirement object, which OpenAPI allows and the stubs do not know.
        auth=[{"ehrJwt": []}],  # type: ignore[list-item]
        parameters=[SERVICE_ID],
        request={"application/json": openapi.ref("CdsFeedback")},
        responses={200: openapi.ref("CdsFeedbackResult"), **openapi.errors(400, 401, 404)},
    )
    def post(self, request: Request, service_id: str) -> Response:
        try:
            service = _service(service_id)
            issuer, user = _ehr(request)
            try:
                feedback = cds_hooks.Feedback.model_validate(request.data)
            except ValidationError as exc:
                raise cds_hooks.HookError(400, cds_hooks.pydantic_errors(exc)) from exc
            outcomes = cds_hooks.feedback_record(
                service=service,
                feedback=feedback,
                user=user,
                issuer=issuer,
                actor=cds_hooks.ehr_actor(user, issuer, request),
            )
        except cds_hooks.HookError as exc:
            return _errors(exc)
        return Response({"recorded": outcomes})

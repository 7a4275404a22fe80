"""The audit REST API for auditors: the event list and the chain check. Thin views."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydantic import ValidationError
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit import schemas, services
from audit.actors import actor_for
from audit.models import AuditEvent
from audit.schemas import EventQuery
from audit.selectors import events_filtered
from bedside import roles
from bedside.http import openapi
from bedside.http.errors import validation_errors
from bedside.http.pagination import CasePagination

AUDIT_ROLES = {roles.AUDITOR, roles.ADMIN}


class IsAuditor(BasePermission):
    message = "only auditors and administrators read the audit trail"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(roles.roles_of(request.user) & AUDIT_ROLES)


def event_representation(event: AuditEvent) -> schemas.AuditEvent:
    return schemas.AuditEvent(
        id=event.id,
        recorded_at=event.recorded_at,
        actor=event.actor_label,
        actor_id=event.actor_id,
        role=event.role,
        action=event.action,
        code=event.code,
        outcome=event.outcome,
        object_type=event.object_type,
        object_id=event.object_id,
        case_id=event.case_id,
        source_address=event.source_address,
        request_id=event.request_id,
        details=event.details,
        prev_hash=event.prev_hash,
        hash=event.hash,
    )


def query_params(request: Request, *, ignore: tuple[str, ...]) -> dict[str, str]:
    return {k: str(v) for k, v in request.query_params.items() if k not in ignore and v != ""}


class EventList(APIView):
    permission_classes = [IsAuditor]

    @extend_schema(
        operation_id="audit_events",
        summary="Audit events, filtered and sorted by `sort` (auditors and administrators)",
        parameters=[
            OpenApiParameter(name, str, description=text)
            for name, text in (
                ("since", "ISO 8601 time, inclusive"),
                ("until", "ISO 8601 time, exclusive"),
                ("actor", "actor label"),
                ("code", "event code, e.g. case.viewed"),
                ("case", "case id"),
                ("patient", "the case's external id (whole, case ignored)"),
                ("outcome", "success or failure"),
                ("sort", "a column to sort by (default id); prefix - to reverse, e.g. -id"),
            )
        ]
        + openapi.PAGE_PARAMETERS,
        responses={
            200: OpenApiResponse(schemas.AuditEventPage, description="A page of events."),
            **openapi.errors(400, 401, 403, 429),
            **openapi.PAGE_NOT_FOUND,
        },
    )
    def get(self, request: Request) -> Response:
        try:
            query = EventQuery.model_validate(query_params(request, ignore=("page", "page_size")))
        except ValidationError as exc:
            errors = validation_errors(exc)
            for error in errors:
                error["loc"] = ["query", *error["loc"]]
            return Response({"errors": errors}, status=status.HTTP_400_BAD_REQUEST)
        services.chain_pending()  # auditors read a linked trail: what has committed, linked
        paginator = CasePagination()
        page = paginator.paginate_queryset(events_filtered(query), request, view=self)
        assert page is not None
        services.audit_viewed(
            actor=actor_for(request.user, request),
            view="events-api",
            filters=query.model_dump(mode="json", exclude_none=True),
            count=len(page),
        )
        body = schemas.AuditEventPage(
            count=paginator.total(),
            next=paginator.get_next_link(),
            previous=paginator.get_previous_link(),
            results=[event_representation(e) for e in page],
        )
        return Response(body.model_dump(mode="json"))


class ChainVerify(APIView):
    """GET walks the chain; POST a checkpoint (``manage.py audit_checkpoint``'s JSON) to also
    prove that nothing after it was cut off."""

    permission_classes = [IsAuditor]

    @extend_schema(
        operation_id="audit_verify",
        summary="Walk the hash chain; name the first broken event",
        responses={
            200: OpenApiResponse(schemas.AuditChainReport, description="What the walk found."),
            **openapi.errors(401, 403, 429),
        },
    )
    def get(self, request: Request) -> Response:
        report = services.chain_verify_recorded(actor=actor_for(request.user, request))
        return Response(schemas.AuditChainReport(**report.as_dict()).model_dump(mode="json"))

    @extend_schema(
        operation_id="audit_verify_checkpoint",
        summary="Walk the chain and check it against a checkpoint (detects a cut-off tail)",
        request={"application/json": schemas.AuditCheckpoint},
        responses={
            200: OpenApiResponse(schemas.AuditChainReport, description="What the walk found."),
            **openapi.errors(400, 401, 403, 429),
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        try:
            checkpoint = services.checkpoint_load(data, key=settings.BEDSIDE_AUDIT_CHECKPOINT_KEY)
        except services.CheckpointInvalid as exc:
            return Response(
                {"errors": [{"loc": ["body"], "msg": str(exc)}]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        report = services.chain_verify_recorded(
            actor=actor_for(request.user, request), checkpoint=checkpoint
        )
        return Response(schemas.AuditChainReport(**report.as_dict()).model_dump(mode="json"))

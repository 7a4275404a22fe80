""" "How good is this model here": the validation card every clinician and auditor can open,
and the same as JSON for integrators."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bedside import roles
from bedside.http import openapi
from reasoning import schemas, selectors, services
from reasoning.models import ServedModel, ValidationReport


def model_cards() -> list[dict[str, Any]]:
    """One card per model revision this installation has served, newest first, with its
    latest validation report and the calibration in force for it."""
    cards = []
    for served in ServedModel.objects.order_by("-last_seen_at")[:20]:
        report = selectors.latest_report(served.revision)
        calibration = selectors.calibration_for(served.revision)  # the one new runs get
        cards.append({"served": served, "report": report, "calibration": calibration})
    return cards


def _may_read(user: Any) -> bool:
    return bool(roles.roles_of(user) & (roles.READERS_OF_ALL_CASES | {roles.CLINICIAN}))


@login_required
@require_GET
def model_page(request: HttpRequest) -> HttpResponse:
    if not _may_read(request.user):
        raise PermissionDenied
    return render(
        request,
        "reasoning/model.html",
        {"cards": model_cards(), "current_revision": services.model_revision()},
    )


@login_required
@require_GET
def reliability_png(request: HttpRequest, report_id: int) -> HttpResponse:
    if not _may_read(request.user):
        raise PermissionDenied
    report = get_object_or_404(ValidationReport, pk=report_id)
    return HttpResponse(bytes(report.reliability_png), content_type="image/png")


class CanReadValidation(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(roles.roles_of(request.user) & roles.CASE_READERS)


class ModelValidation(APIView):
    """The served model revisions and the latest validation of each (no item details)."""

    permission_classes = [CanReadValidation]

    @extend_schema(
        operation_id="model_validation",
        summary="Each model revision served here, its latest validation report and calibration",
        responses={
            200: OpenApiResponse(schemas.ModelValidation, description="Newest revision first."),
            **openapi.errors(401, 403, 429),
        },
    )
    def get(self, request: Request) -> Response:
        revisions = []
        for card in model_cards():
            served, report, calibration = card["served"], card["report"], card["calibration"]
            revisions.append(
                schemas.ModelRevision(
                    revision=served.revision,
                    model_id=served.model_id,
                    max_model_len=served.max_model_len,
                    first_seen_at=served.first_seen_at,
                    last_seen_at=served.last_seen_at,
                    latest_report=None
                    if report is None
                    else schemas.ValidationReportSummary(
                        id=report.pk,
                        created_at=report.created_at,
                        dataset=schemas.Dataset(
                            name=report.dataset_name, sha256=report.dataset_sha256
                        ),
                        prompt_version=report.prompt_version,
                        items=report.items_total,
                        metrics={
                            k: report.metrics.get(k)
                            for k in ("accuracy", "brier", "ece", "auroc", "mean_confidence")
                        },
                        reliability_png=request.build_absolute_uri(
                            f"/model/reports/{report.pk}/reliability.png"
                        ),
                    ),
                    calibration=None
                    if calibration is None
                    else schemas.CalibrationSummary(
                        id=calibration.pk,
                        method=calibration.method,
                        report_id=calibration.report_id,
                        sample_size=calibration.sample_size,
                    ),
                )
            )
        return Response(schemas.ModelValidation(results=revisions).model_dump(mode="json"))

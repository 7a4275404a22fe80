"""Errors leave the API in one shape, ``{"errors": [{"loc": [...], "msg": "..."}]}``:
DRF's exceptions, Django's 404 and 403, pydantic's validation errors, unmatched URLs."""

from __future__ import annotations

from typing import Annotated, Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from rest_framework import exceptions, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from bedside.http.pagination import QueryParameterInvalid


class ErrorItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(
        description='Path to the offending field, e.g. ["vitals", "spo2"] or '
        '["entry", 3, "resource", "valueQuantity"].'
    )
    msg: str
    type: str | None = Field(default=None, description="pydantic's error type, when known.")


class Error(BaseModel):
    """Every 4xx/5xx answer: a list of what went wrong and where."""

    model_config = ConfigDict(extra="forbid")

    # Inlined, not a $ref: clients read the whole shape in one place.
    errors: Annotated[
        list[ErrorItem],
        WithJsonSchema({"type": "array", "items": ErrorItem.model_json_schema()}),
    ]


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"errors": [...]}`` checked against ``Error`` (``type`` only where it is known)."""
    return Error.model_validate({"errors": errors}).model_dump(mode="json", exclude_none=True)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Django's own 404 and 403 (get_object_or_404, PermissionDenied) as DRF's, as DRF's
    # handler does, so that they too leave in our error shape rather than as {"detail"}.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, QueryParameterInvalid):
        response.data = {"errors": exc.errors}
    elif isinstance(exc, APIException):
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


# The paths whose clients read JSON: what no route matches there is a 404 in our shape.
API_PATHS = ("/api/", "/cds-services")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: a URL no route matches (say a case id that is not a UUID) is an
    ``{"errors"}`` 404 under the API's paths, as the document says, and Django's page
    elsewhere."""
    if request.path.startswith(API_PATHS):
        return JsonResponse(
            {"errors": [{"loc": ["path"], "msg": "no such resource (a case id is a UUID)"}]},
            status=status.HTTP_404_NOT_FOUND,
        )
    return page_not_found(request, exception)


def validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]

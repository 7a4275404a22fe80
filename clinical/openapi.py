"""What the OpenAPI document says that only the clinical API knows: the FHIR Bundle body,
the FHIR and list parameters, the submission example, and the CDS Hooks shapes."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    OpenApiWebhook,
    extend_schema,
)
from pydantic import BaseModel, ConfigDict

from bedside.http.openapi import PAGE_PARAMETERS
from clinical.schemas import CaseFinishedEvent, CaseInput

REF = "#/components/schemas/{model}"


class FhirBundleEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    fullUrl: str | None = None
    resource: dict[str, Any]


class FhirBundle(BaseModel):
    """A FHIR R4 Bundle (transaction, collection, searchset or batch) holding one Patient.
    The latest Encounter's data becomes the case; resource types not read are listed in
    the answer's `fhir.ignored`."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    type: Literal["transaction", "collection", "searchset", "batch"]
    entry: list[FhirBundleEntry] = []


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[!-~]{1,255}$"},
    OpenApiParameter.HEADER,
    description="Up to 255 visible ASCII characters, unique per submission. A retry with "
    "the same key and body returns the original case (`Idempotent-Replayed: true`); the "
    "same key with another body is a 409. Scoped to the submitting user or key.",
)


def _case_field(name: str) -> dict[str, Any]:
    """A FHIR parameter's schema: that of the case field it fills in (one source of truth)."""
    schema = dict(CaseInput.model_json_schema(ref_template=REF)["properties"][name])
    schema.pop("title", None)
    schema.pop("default", None)
    return schema


FHIR_PARAMETERS = [
    OpenApiParameter(
        "question",
        _case_field("question"),
        description="FHIR submissions: the clinician's question (default: the most likely "
        "diagnosis and what to do next). Checked on any submission when given.",
    ),
    OpenApiParameter(
        "chief_complaint",
        _case_field("chief_complaint"),
        description="FHIR submissions: the chief complaint (default: the latest encounter's "
        "reason, else its type). Checked on any submission when given.",
    ),
    OpenApiParameter(
        "priority",
        _case_field("priority"),
        description="FHIR submissions: the case's priority (default routine). Checked on any "
        "submission when given.",
    ),
    OpenApiParameter(
        "external_id",
        _case_field("external_id"),
        description="FHIR submissions: your own reference. Checked on any submission when given.",
    ),
    OpenApiParameter(
        "encounter_id",
        str,
        description="FHIR submissions: the id of the Encounter the case is about (default: "
        "the latest).",
    ),
]
LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=["queued", "running", "completed", "failed"]),
    OpenApiParameter("external_id", str),
    OpenApiParameter(
        "updated_since",
        {"type": "string", "format": "date-time"},
        description="Only cases changed (status, retry, answer) at or after this time; "
        "ISO 8601, UTC when no zone. Poll with the time of your last poll.",
    ),
    *PAGE_PARAMETERS,
]
CASE_EXAMPLE = OpenApiExample(
    "Chest pain in the emergency department",
    value={
        "external_id": "ED-2026-000123",
        "patient": {"age_years": 64, "sex": "male"},
        "setting": "emergency",
        "chief_complaint": "Crushing chest pain for 40 minutes",
        "vitals": {"heart_rate": 110, "systolic_bp": 150, "diastolic_bp": 90, "spo2": 94},
        "question": "What is the most likely diagnosis, and what should be done next?",
    },
    request_only=True,
    media_type="application/json",
)


def _cds_components() -> dict[str, Any]:
    # Imported here: this module is imported by clinical.api, which the CDS Hooks module's
    # neighbours import; the shapes are only needed when the document is generated.
    from clinical.ehr import cds_hooks

    found: dict[str, Any] = {}
    for name, model in (
        ("CdsHookRequest", cds_hooks.HookRequest),
        ("CdsHookResponse", cds_hooks.HookResponse),
        ("CdsFeedback", cds_hooks.Feedback),
    ):
        schema = model.model_json_schema(ref_template="#/components/schemas/Cds{model}")
        found.update({f"Cds{k}": v for k, v in schema.pop("$defs", {}).items()})
        found[name] = schema
    found["CdsDiscovery"] = {
        "type": "object",
        "required": ["services"],
        "properties": {
            "services": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["hook", "id", "description"],
                    "properties": {
                        "hook": {"type": "string"},
                        "id": {"type": "string"},
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "prefetch": {"type": "object", "additionalProperties": {"type": "string"}},
                        "usageRequirements": {"type": "string"},
                    },
                },
            }
        },
    }
    found["CdsFeedbackResult"] = {
        "type": "object",
        "properties": {
            "recorded": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "card": {"type": "string"},
                        "review": {"type": ["integer", "null"]},
                        # Present (true) when this outcome for this card was recorded
                        # before: nothing new was recorded.
                        "replayed": {"type": "boolean"},
                    },
                },
            }
        },
    }
    return found


def append_cds_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: the CDS Hooks shapes and the EHR's JWT as a way in."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(_cds_components())
    components.setdefault("securitySchemes", {})["ehrJwt"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "CDS Hooks: a JWT signed by a registered EHR client (manage.py cds_client).",
    }
    return result


# The completion callback, as an OpenAPI 3.1 webhook (SPECTACULAR_SETTINGS["WEBHOOKS"]).
CASE_FINISHED_WEBHOOK = OpenApiWebhook(
    name="caseFinished",
    decorator=extend_schema(
        summary="A case of this key completed or failed (the key's callback URL)",
        description=(
            "Sent to the integration key's callback URL (on-premises addresses, or hosts in "
            "`BEDSIDE_CALLBACK_ALLOWED_HOSTS`; checked at save and at every send, redirects "
            "not followed). Headers: `X-Bedside-Event` (`case.completed` or `case.failed`); "
            "`X-Bedside-Delivery`, a UUID that is the same on every retry of one "
            "announcement (drop duplicates by it); `X-Bedside-Signature: t=<unix "
            "time>,v1=<hex>`, where `v1` is HMAC-SHA256, keyed by the key's callback secret "
            "(shown once at issue, or by `manage.py rotate_callback_secret`), of `<t>.` "
            "followed by the raw body. Refuse a `t` older than a few minutes. Any 2xx "
            "acknowledges; anything else is retried with a doubling backoff "
            "(`BEDSIDE_CALLBACK_MAX_ATTEMPTS`). The body holds no patient data: fetch the "
            "case at `case.links.self` with the key."
        ),
        request=CaseFinishedEvent,
        responses={200: OpenApiResponse(description="Received (any 2xx).")},
    ),
)

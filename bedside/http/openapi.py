"""The OpenAPI description (drf-spectacular, OpenAPI 3.1).

Our views validate with pydantic, not DRF serializers, so the request schemas come from
the pydantic models themselves (one source of truth) and the responses are written out
here once. Bearer API keys and session login are described as the two ways in.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from clinical.schemas import CaseInput, ReviewInput

REF = "#/components/schemas/{model}"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _pydantic_components() -> dict[str, Any]:
    components: dict[str, Any] = {}
    for model in (CaseInput, ReviewInput):
        schema = model.model_json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[model.__name__] = schema
    return components


_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

ERROR = {
    "type": "object",
    "description": "Every 4xx/5xx answer: a list of what went wrong and where.",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {
                        "type": "array",
                        "description": "Path to the offending field, e.g. "
                        '["vitals", "spo2"] or ["entry", 3, "resource", "valueQuantity"].',
                        "items": {"type": ["string", "integer"]},
                    },
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        }
    },
}

CASE_SUMMARY = {
    "type": "object",
    "required": ["id", "status", "created_at", "links"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "external_id": {"type": "string"},
        "priority": {"type": "string", "enum": ["routine", "urgent", "stat"]},
        "status": {"type": "string", "enum": ["queued", "running", "completed", "failed"]},
        "status_detail": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "started_at": _NULLABLE_TIME,
        "finished_at": _NULLABLE_TIME,
        "attempts": {"type": "integer"},
        "retries": {"type": "integer"},
        "next_retry_at": _NULLABLE_TIME,
        "links": {
            "type": "object",
            "properties": {
                "self": {"type": "string", "format": "uri"},
                "reviews": {"type": "string", "format": "uri"},
            },
        },
    },
}

RESULT = {
    "type": ["object", "null"],
    "description": "The latest completed run; null until the case is completed.",
    "properties": {
        "assessment": {"type": "object"},
        "reasoning_trace": {"type": "string"},
        "trace_source": {"type": "string"},
        "confidence": {
            "type": "object",
            "properties": {
                "value": {"type": ["number", "null"]},
                "raw": {"type": ["number", "null"]},
                "method": {"type": "string"},
                "components": {"type": ["object", "null"]},
            },
        },
        "model": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "revision": {"type": "string"}},
        },
        "prompt": {
            "type": "object",
            "properties": {"version": {"type": "string"}, "sha256": {"type": "string"}},
        },
    },
}

REVIEW = {
    "type": "object",
    "required": ["id", "created_at", "reviewer", "decision"],
    "properties": {
        "id": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"},
        "reviewer": {"type": "string"},
        "decision": {"type": "string", "enum": ["accept", "modify", "reject"]},
        "reason_code": {"type": "string"},
        "reason_display": {"type": "string"},
        "reason_text": {"type": "string"},
        "modified_assessment": {"type": ["object", "null"]},
        "source": {"type": "string", "enum": ["form", "api", "cds-hooks"]},
        "run_id": {"type": "integer"},
    },
}

CASE = {
    "allOf": [
        ref("CaseSummary"),
        {
            "type": "object",
            "properties": {
                "input": ref("CaseInput"),
                "result": ref("CaseResult"),
                "failure_reason": {"type": ["string", "null"]},
                "latest_review": {"oneOf": [ref("Review"), {"type": "null"}]},
                "fhir": {
                    "type": "object",
                    "description": "Only on a FHIR submission: what was read and ignored.",
                    "properties": {
                        "encounter": {"type": "string"},
                        "mapped": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "ignored": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "skipped": {"type": "object", "additionalProperties": {"type": "integer"}},
                    },
                },
            },
        },
    ]
}

FHIR_BUNDLE = {
    "type": "object",
    "description": "A FHIR R4 Bundle (transaction, collection, searchset or batch) holding "
    "one Patient. The latest Encounter's data becomes the case; resource types not read "
    "are listed in the answer's `fhir.ignored`.",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"const": "Bundle"},
        "type": {"type": "string", "enum": ["transaction", "collection", "searchset", "batch"]},
        "entry": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"fullUrl": {"type": "string"}, "resource": {"type": "object"}},
            },
        },
    },
}


AUDIT_EVENT = {
    "type": "object",
    "required": ["id", "recorded_at", "actor", "action", "code", "outcome", "hash"],
    "properties": {
        "id": {"type": "integer"},
        "recorded_at": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "actor_id": {"type": ["integer", "null"]},
        "role": {"type": "string"},
        "action": {
            "type": "string",
            "enum": ["C", "R", "U", "D", "E"],
            "description": "FHIR AuditEvent.action.",
        },
        "code": {"type": "string"},
        "outcome": {"type": "string", "enum": ["success", "failure"]},
        "object_type": {"type": "string"},
        "object_id": {"type": "string"},
        "case_id": {"type": ["string", "null"], "format": "uuid"},
        "source_address": {"type": ["string", "null"]},
        "request_id": {"type": "string"},
        "details": {"type": "object"},
        "prev_hash": {"type": "string"},
        "hash": {"type": "string"},
    },
}

CHECKPOINT = {
    "type": "object",
    "description": "The chain's head as `manage.py audit_checkpoint` wrote it.",
    "required": ["head_id", "head_hash", "count", "created_at"],
    "properties": {
        "head_id": {"type": "integer"},
        "head_hash": {"type": "string"},
        "count": {"type": "integer"},
        "created_at": {"type": "string"},
        "signature": {"type": "string", "description": "HMAC-SHA256, when a key is set."},
    },
}

CHAIN_REPORT = {
    "type": "object",
    "required": ["ok", "events_checked", "head_id", "head_hash"],
    "properties": {
        "ok": {"type": "boolean"},
        "events_checked": {"type": "integer"},
        "head_id": {"type": ["integer", "null"]},
        "head_hash": {"type": "string"},
        "broken_id": {"type": ["integer", "null"], "description": "The first event that fails."},
        "problem": {
            "type": "string",
            "description": "edited, inserted, removed or truncated; empty when ok.",
        },
        "reason": {"type": "string"},
        "checkpoint": {"oneOf": [ref("AuditCheckpoint"), {"type": "null"}]},
        "seconds": {"type": "number"},
    },
}

_NULLABLE_INTEGER = {"type": ["integer", "null"]}
MODEL_VALIDATION = {
    "type": "object",
    "required": ["results"],
    "properties": {
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["revision", "model_id", "latest_report", "calibration"],
                "properties": {
                    "revision": {"type": "string"},
                    "model_id": {"type": "string"},
                    "max_model_len": _NULLABLE_INTEGER,
                    "first_seen_at": {"type": "string", "format": "date-time"},
                    "last_seen_at": {"type": "string", "format": "date-time"},
                    "latest_report": {
                        "type": ["object", "null"],
                        "properties": {
                            "id": {"type": "integer"},
                            "created_at": {"type": "string", "format": "date-time"},
                            "dataset": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "sha256": {"type": "string"},
                                },
                            },
                            "prompt_version": {"type": "string"},
                            "items": {"type": "integer"},
                            "metrics": {
                                "type": "object",
                                "additionalProperties": {"type": ["number", "null"]},
                            },
                            "reliability_png": {"type": "string", "format": "uri"},
                        },
                    },
                    "calibration": {
                        "type": ["object", "null"],
                        "properties": {
                            "id": {"type": "integer"},
                            "method": {"type": "string"},
                            "report_id": {"type": "integer"},
                            "sample_size": {"type": "integer"},
                        },
                    },
                },
            },
        }
    },
}


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["count", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": ["string", "null"], "format": "uri"},
            "previous": {"type": ["string", "null"], "format": "uri"},
            "results": {"type": "array", "items": ref(item)},
        },
    }


def components() -> dict[str, Any]:
    """The components our operations refer to (added by ``append_components``)."""
    return {
        "schemas": {
            **_pydantic_components(),
            "Error": ERROR,
            "CaseSummary": CASE_SUMMARY,
            "CaseResult": RESULT,
            "Case": CASE,
            "CasePage": _page_of("CaseSummary"),
            "Review": REVIEW,
            "ReviewList": {
                "type": "object",
                "properties": {"results": {"type": "array", "items": ref("Review")}},
            },
            "FhirBundle": FHIR_BUNDLE,
            "AuditEvent": AUDIT_EVENT,
            "AuditEventPage": _page_of("AuditEvent"),
            "AuditCheckpoint": CHECKPOINT,
            "AuditChainReport": CHAIN_REPORT,
            "ModelValidation": MODEL_VALIDATION,
        }
    }


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    words = {
        400: "Invalid input: each error names the field (`loc`) and the reason.",
        401: "No credentials, or an invalid, revoked or expired API key.",
        403: "The role (or the key's scopes) does not allow this.",
        404: "No such case, or not one this user may see.",
        409: "Conflict (see the message).",
        412: "CDS Hooks: the prefetch lacks what Bedside needs (the Patient).",
        413: "The request body is too large.",
        415: "Unsupported content type.",
        429: "The key's rate limit is spent; retry after `Retry-After` seconds.",
    }
    return {code: OpenApiResponse(response=ref("Error"), description=words[code]) for code in codes}


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
PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="From 1."),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 100}, description="At most 100."
    ),
]
LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=["queued", "running", "completed", "failed"]),
    OpenApiParameter("external_id", str),
    *PAGE_PARAMETERS,
]
# A list's 404: DRF's answer to a page number past the last page.
PAGE_NOT_FOUND = {
    404: OpenApiResponse(response=ref("Error"), description="No such page (past the last one).")
}
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


class ApiKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "bedside.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bsk_<prefix>_<secret>",
            "description": "An integration key from `manage.py issue_api_key`.",
        }


def _cds_components() -> dict[str, Any]:
    # Imported here: the CDS Hooks module imports the services, which import this module's
    # neighbours; the shapes are only needed when the document is generated.
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
                    },
                },
            }
        },
    }
    return found


def append_components(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: add our hand-written and pydantic components to the document."""
    result_components = result.setdefault("components", {})
    result_components.setdefault("schemas", {}).update(components()["schemas"])
    result_components["schemas"].update(_cds_components())
    result_components.setdefault("securitySchemes", {})["ehrJwt"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "CDS Hooks: a JWT signed by an EHR named in BEDSIDE_CDS_HOOKS_CLIENTS.",
    }
    return result

"""OpenAPI plumbing shared by every app (drf-spectacular, OpenAPI 3.1).

The shapes themselves are pydantic models next to the code that answers with them
(``clinical.schemas``, ``audit.schemas``, ``reasoning.schemas``): drf-spectacular's pydantic
support turns the same model that builds the JSON into the document. Here: the error
responses, the page parameters, and bearer API keys as a way in. No app is imported.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from bedside.http.errors import Error


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_ERROR_WORDS = {
    400: "Invalid input: each error names the field (`loc`) and the reason.",
    401: "No credentials, or an invalid, revoked or expired API key.",
    403: "The role (or the key's scopes) does not allow this.",
    404: "No such case, or not one this user may see.",
    409: "Conflict (see the message).",
    412: "CDS Hooks: the prefetch lacks what Bedside needs (the Patient).",
    413: "The request body is too large.",
    415: "Unsupported content type.",
    422: "Readable, but nothing to reason over: no clinical content beyond demographics.",
    429: "The key's rate limit is spent; retry after `Retry-After` seconds.",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(response=Error, description=_ERROR_WORDS[code]) for code in codes}


PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="From 1."),
    OpenApiParameter(
        "page_size", {"type": "integer", "minimum": 1, "maximum": 100}, description="At most 100."
    ),
]
# A list's 404: DRF's answer to a page number past the last page.
PAGE_NOT_FOUND = {
    404: OpenApiResponse(response=Error, description="No such page (past the last one).")
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "bedside.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "bsk_<prefix>_<secret>",
            "description": "An integration key from `manage.py issue_api_key`.",
        }

"""The OpenAPI document: valid OpenAPI 3.1, every endpoint, the error shape and both ways
in described; the docs pages are served from our own static files."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client
from openapi_spec_validator import validate

from clinical.schemas import CaseInput, ReviewInput

SCHEMA_URL = "/api/v1/schema/"


def schema() -> dict[str, Any]:
    response = Client().get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_schema_is_valid_openapi_31(db: None) -> None:
    document = schema()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 meta-schema


def test_schema_describes_every_endpoint_with_the_error_shape(db: None) -> None:
    document = schema()
    operations = {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) >= {
        ("/api/v1/cases/", "get"),
        ("/api/v1/cases/", "post"),
        ("/api/v1/cases/{case_id}/", "get"),
        ("/api/v1/cases/{case_id}/reviews/", "get"),
        ("/api/v1/cases/{case_id}/reviews/", "post"),
        ("/cds-services", "get"),
        ("/cds-services/{service_id}", "post"),
        ("/cds-services/{service_id}/feedback", "post"),
    }
    for (path, method), operation in operations.items():
        codes = operation["responses"]
        assert any(code.startswith("2") for code in codes), (path, method)
        for code, response in codes.items():
            if code.startswith("4"):
                schema_ref = response["content"]["application/json"]["schema"]["$ref"]
                assert schema_ref == "#/components/schemas/Error", (path, method, code)
        if path.startswith("/api/v1/"):
            assert {"apiKey": []} in operation["security"]
            assert {"cookieAuth": []} in operation["security"]
        elif method == "post":  # CDS Hooks: the EHR's signed JWT
            assert operation["security"] == [{"ehrJwt": []}]
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["errors"]["items"]["required"] == ["loc", "msg"]


def test_schema_auth_schemes_are_bearer_keys_session_and_ehr_jwt(db: None) -> None:
    schemes = schema()["components"]["securitySchemes"]
    assert schemes["apiKey"]["type"] == "http" and schemes["apiKey"]["scheme"] == "bearer"
    assert schemes["ehrJwt"]["bearerFormat"] == "JWT"
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def test_submission_accepts_json_and_fhir_with_an_idempotency_key(db: None) -> None:
    post = schema()["paths"]["/api/v1/cases/"]["post"]
    content = post["requestBody"]["content"]
    assert content["application/json"]["schema"]["$ref"] == "#/components/schemas/CaseInput"
    assert content["application/fhir+json"]["schema"]["$ref"].endswith("/FhirBundle")
    headers = [p["name"] for p in post["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    assert {"409", "413", "415", "429"} <= set(post["responses"])


def test_request_schemas_are_the_pydantic_models(db: None) -> None:
    components = schema()["components"]["schemas"]
    for model in (CaseInput, ReviewInput):
        described = components[model.__name__]
        assert set(described["properties"]) == set(model.model_fields)
        assert described["required"] == model.model_json_schema()["required"]
        assert described["additionalProperties"] is False  # unknown fields are refused


def test_docs_pages_use_only_local_static_files(db: None) -> None:
    for url in ("/api/v1/docs/", "/api/v1/redoc/"):
        page = Client().get(url)
        assert page.status_code == 200
        html = page.content.decode()
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources, url
        assert not [s for s in sources if re.match(r"^(https?:)?//", s)], sources
        static = [s for s in sources if s.startswith("/static/")]
        assert static
        for path in static:
            # Hashed names (manifest storage): the file collectstatic wrote is what is served.
            assert staticfiles_storage.exists(path.removeprefix("/static/")), path

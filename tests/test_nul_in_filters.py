"""A NUL byte in any filter (issue 17, finding 11) is refused with a 400 that names the
filter, on the screens and in the API: PostgreSQL cannot hold one in a text value, and it
used to surface as a server error."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from audit.schemas import CaseListQuery, EventQuery

# Every text filter of the auditor's screens and API, read from the query models themselves
# (so a new one is covered), and the clinicians' searches.
AUDITOR_EVENT_PATHS = (
    "/audit/events/",
    "/audit/events/export.csv",
    "/audit/events/export.fhir.json",
    "/api/v1/audit/events/",
)
AUDITOR_FILTERS = [
    (path, name) for path in AUDITOR_EVENT_PATHS for name in EventQuery.model_fields
] + [("/audit/cases/", name) for name in CaseListQuery.model_fields]
CLINICIAN_FILTERS = [
    ("/cases/", "external_id"),
    ("/cases/", "date_from"),
    ("/api/v1/cases/", "external_id"),
    ("/api/v1/cases/", "status"),
]


def client_for(user: User) -> APIClient:
    # A server error is an answer to report here, not an exception to stop at.
    client = APIClient(raise_request_exception=False)
    client.force_login(user)
    return client


def _refused(client: APIClient, path: str, name: str) -> list[str]:
    response = client.get(path, {name: "abc\x00def"})
    if response.status_code != 400:
        return [f"{path}?{name}: {response.status_code}"]
    body = json.loads(response.content)
    if body["errors"][0]["loc"] != ["query", name]:
        return [f"{path}?{name}: names {body['errors'][0]['loc']}"]
    return []


@pytest.mark.parametrize("path", ["/audit/events/", "/api/v1/audit/events/"])
def test_a_nul_byte_in_the_actor_filter_is_a_400_naming_it(carol: User, path: str) -> None:
    assert _refused(client_for(carol), path, "actor") == []


def test_a_nul_byte_in_any_filter_is_a_400_naming_it(carol: User, alice: User) -> None:
    auditor, clinician = client_for(carol), client_for(alice)
    wrong = [error for path, name in AUDITOR_FILTERS for error in _refused(auditor, path, name)]
    wrong += [
        error for path, name in CLINICIAN_FILTERS for error in _refused(clinician, path, name)
    ]
    assert wrong == [], "\n".join(["", *wrong])


def test_a_nul_byte_in_a_parameter_name_is_refused_too(carol: User) -> None:
    response = client_for(carol).get("/audit/events/?ac%00tor=x")
    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["loc"] == ["query", "ac\x00tor"]

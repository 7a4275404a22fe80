"""Text PostgreSQL cannot store (NUL, unpaired surrogates) is a 400, never a 500.
Found by the schemathesis run: a NUL in past_medical_history failed at the database."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from clinical.models import Case
from tests.factories import load_case

URL = "/api/v1/cases/"


@pytest.mark.parametrize(
    ("escape", "message"),
    [("\\u0000", "NUL"), ("\\ud800", "unpaired surrogate")],
    ids=["nul", "lone-surrogate"],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/fhir+json"])
def test_unstorable_text_is_400(
    ehr_client: APIClient, escape: str, message: str, content_type: str
) -> None:
    body = json.dumps(load_case()).replace('"hypertension"', f'"hyper{escape}tension"')
    assert escape in body
    response = ehr_client.generic("POST", URL, body, content_type=content_type)
    assert response.status_code == 400
    error = response.json()["errors"][0]["msg"]
    assert message in error and "past_medical_history" in error
    assert Case.objects.count() == 0


def test_an_escaped_backslash_before_u0000_is_ordinary_text(ehr_client: APIClient) -> None:
    data = load_case()
    data["history_of_present_illness"] = "literally \\u0000 in the notes"
    response = ehr_client.post(URL, data, format="json")
    assert response.status_code == 202
    assert (
        response.json()["input"]["history_of_present_illness"] == data["history_of_present_illness"]
    )

"""Idempotency-Key on case submission: retries never duplicate a case, even in a storm."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.contrib.auth.models import User
from django.db import connection
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside.accounts.services import IssuedKey
from clinical.models import Case, IdempotencyRecord
from tests.conftest import client_for, load_case

URL = "/api/v1/cases/"


def test_retry_with_same_key_and_body_returns_the_original_case(ehr_client: APIClient) -> None:
    first = ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    again = ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="order-1")
    assert first.status_code == again.status_code == 202
    assert first["Idempotent-Replayed"] == "false"
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Case.objects.count() == 1
    assert AuditEvent.objects.filter(code="case.submitted").count() == 1
    assert AuditEvent.objects.filter(code="case.submission_replayed").count() == 1


def test_same_key_with_another_body_is_409_and_saves_nothing(ehr_client: APIClient) -> None:
    ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="order-2")
    changed = load_case()
    changed["vitals"]["heart_rate"] = 72
    response = ehr_client.post(URL, changed, format="json", HTTP_IDEMPOTENCY_KEY="order-2")
    assert response.status_code == 409
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert Case.objects.count() == 1


def test_key_order_and_whitespace_do_not_make_another_body(ehr_client: APIClient) -> None:
    import json

    data = load_case()
    compact = json.dumps(data, separators=(",", ":"))
    reordered = json.dumps(dict(reversed(list(data.items()))), indent=4)
    first = ehr_client.generic(
        "POST", URL, compact, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    second = ehr_client.generic(
        "POST", URL, reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]


def test_keys_are_scoped_per_submitter(ehr_client: APIClient, alice: User) -> None:
    mine = ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    hers = client_for(alice).post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    assert hers.status_code == 202
    assert hers["Idempotent-Replayed"] == "false"
    assert hers.json()["id"] != mine.json()["id"]
    assert Case.objects.count() == 2


def test_malformed_idempotency_key_is_400(ehr_client: APIClient) -> None:
    response = ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="x" * 256)
    assert response.status_code == 400
    assert response.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert Case.objects.count() == 0


def test_invalid_body_with_a_key_saves_no_record_so_a_fixed_retry_goes_through(
    ehr_client: APIClient,
) -> None:
    broken = load_case()
    broken.pop("question")
    assert ehr_client.post(URL, broken, format="json", HTTP_IDEMPOTENCY_KEY="f").status_code == 400
    fixed = ehr_client.post(URL, load_case(), format="json", HTTP_IDEMPOTENCY_KEY="f")
    assert fixed.status_code == 202 and fixed["Idempotent-Replayed"] == "false"


def test_retry_storm_of_50_concurrent_requests_creates_exactly_one_case(
    transactional_db: None, integration_key: IssuedKey
) -> None:
    storm = 50
    barrier = threading.Barrier(storm)
    body = load_case()

    def submit(_: int) -> tuple[int, str, str]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {integration_key.key}")
        try:
            barrier.wait(timeout=60)
            response = client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="storm-1")
            data: dict[str, Any] = response.json()
            return response.status_code, data.get("id", ""), response.get("Idempotent-Replayed")
        finally:
            connection.close()  # each thread opened its own connection

    with ThreadPoolExecutor(max_workers=storm) as pool:
        results = list(pool.map(submit, range(storm)))

    assert [code for code, _, _ in results] == [202] * storm
    assert len({case_id for _, case_id, _ in results}) == 1
    assert sorted(replayed for _, _, replayed in results) == ["false"] + ["true"] * (storm - 1)
    assert Case.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1
    assert AuditEvent.objects.filter(code="case.submitted").count() == 1
    assert verify_chain() is None

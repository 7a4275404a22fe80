"""A client generated from our OpenAPI document (openapi-python-client) works against a live
server: submit, read and review a case through its typed models. The document and the JSON
come from the same pydantic models; this proves a real client agrees with both."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client as DjangoClient

from clinical import lifecycle
from tests.factories import load_case
from tests.fakes import FakeModelServer, agreeing_completion

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "bedside_api_client"
CSRF_TOKEN = "generatedclientcsrftoken00000000"  # 32 characters, as Django's secret


@pytest.fixture
def generated(live_server: Any, tmp_path: Path) -> Iterator[ModuleType]:
    """The client package, generated from the live server's own document."""
    document = httpx.get(
        f"{live_server.url}/api/v1/schema/", headers={"Accept": "application/vnd.oai.openapi+json"}
    )
    assert document.status_code == 200
    (tmp_path / "schema.json").write_bytes(document.content)
    subprocess.run(
        [
            GENERATOR,
            "generate",
            "--path",
            "schema.json",
            "--output-path",
            PACKAGE,
            "--meta",
            "none",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _signed_in(package: ModuleType, base_url: str, user: User) -> Any:
    """A session as the browser has it: the session cookie, and the CSRF token that DRF
    asks of a session's writes sent as the client's "auth" header."""
    browser = DjangoClient()
    browser.force_login(user)
    return package.AuthenticatedClient(
        base_url=base_url,
        token=CSRF_TOKEN,
        prefix="",
        auth_header_name="X-CSRFToken",
        cookies={"sessionid": browser.cookies["sessionid"].value, "csrftoken": CSRF_TOKEN},
    )


def test_generated_client_submits_reads_and_reviews_a_case(
    generated: ModuleType,
    live_server: Any,
    alice: User,
    fake_model: FakeModelServer,
) -> None:
    case_submit = importlib.import_module(f"{PACKAGE}.api.cases.case_submit")
    case_detail = importlib.import_module(f"{PACKAGE}.api.cases.case_detail")
    case_review_record = importlib.import_module(f"{PACKAGE}.api.cases.case_review_record")
    models = importlib.import_module(f"{PACKAGE}.models")
    client = _signed_in(generated, live_server.url, alice)

    submitted = case_submit.sync_detailed(
        client=client, body=models.CaseInput.from_dict(load_case())
    )
    assert submitted.status_code == 202, submitted.content
    case = submitted.parsed
    assert isinstance(case, models.Case)
    assert isinstance(case.id, uuid.UUID)
    assert case.status == "queued"
    assert case.input_.chief_complaint == load_case()["chief_complaint"]

    fake_model.push(agreeing_completion(["Acute MI", "acute MI", "Unstable angina"]))
    lifecycle.case_run(case_id=case.id)

    detail = case_detail.sync(case.id, client=client)
    assert isinstance(detail, models.Case)
    assert detail.id == case.id
    assert detail.status == "completed"
    result = detail.result
    assert isinstance(result, models.CaseResult)
    assert result.assessment.differential[0].diagnosis == "Acute MI"
    assert 0 <= result.confidence.value <= 1
    assert result.samples and result.usage.completion_tokens >= 0

    review = case_review_record.sync(
        case.id, client=client, body=models.ReviewInput(decision=models.Decision.ACCEPT)
    )
    assert isinstance(review, models.Review)
    assert review.decision == models.Decision.ACCEPT
    assert review.reviewer == "alice"
    assert review.source == "api"

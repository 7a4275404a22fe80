"""The clinician's screens against the real local model: the browser flow of
tests/browser/flows.py, with a real Celery worker and vLLM answering instead of the fake."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page

from clinical.models import Case, CaseStatus
from clinical.services import case_rerun
from reasoning.models import ReasoningRun
from tests.browser.flows import clinician_flow
from tests.browser.support import only_local_requests
from tests.factories import TEST_ACTOR

pytestmark = pytest.mark.e2e
MAX_RERUNS = 3


def test_clinician_flow_waits_for_the_real_model(
    page: Page,
    live_server: Any,
    real_model_server: str,
    start_worker: Any,
    alice: User,
) -> None:
    start_worker()
    reruns = 0

    def finish_case(case_id: str) -> None:
        """The worker answers; a visible no-usable-sample failure is re-run, as the
        clinician's "Run this case again" button does, then the page is shown afresh."""
        nonlocal reruns
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            case = Case.objects.get(pk=case_id)
            if case.status == CaseStatus.COMPLETED:
                break
            if case.status == CaseStatus.FAILED:
                assert reruns < MAX_RERUNS, case.status_detail
                assert case.status_detail.startswith("no usable sample ("), case.status_detail
                reruns += 1
                case_rerun(case=case, actor=TEST_ACTOR)
            time.sleep(1)
        page.reload()

    result = clinician_flow(page, live_server.url, finish_case, answer_timeout_ms=60_000)
    runs = ReasoningRun.objects.filter(case_id=result.case_id).order_by("created_at")
    assert [r.outcome for r in runs] == ["failed"] * reruns + ["completed"]
    assert only_local_requests(page, live_server) == []
    assert result.console_errors == []

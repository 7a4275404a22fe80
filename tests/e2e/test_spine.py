"""The spine, end to end through the real stack:
HTTP POST → PostgreSQL → broker → Celery worker → vLLM (CPU, real model) → PostgreSQL → GET,
with the audit events of each step."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from audit.models import AuditEvent
from audit.services import Actor, verify_chain
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical.models import Case
from reasoning.models import ReasoningRun
from tests.factories import load_case

pytestmark = pytest.mark.e2e
CASE_TIMEOUT_S = 600
# A generous read timeout: on a 2-core machine a request can wait for a core while the CPU
# model decodes (a 30 s limit once failed a CI run). How fast Bedside answers is measured by
# bench/, never asserted here; these tests check that every answer is right.
POLL_TIMEOUT = httpx.Timeout(30, read=180)
MAX_RERUNS = 1  # one re-run keeps the re-run path in the spine; each costs a model run


def issue_key(name: str) -> str:
    return accounts_services.api_key_issue(
        name=name, role=roles.INTEGRATION, actor=Actor(label="tests", role="admin")
    ).key


def wait_for_status(
    client: httpx.Client, url: str, wanted: set[str], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(url)
        # 503 is the API's "try again shortly" (e.g. a database connection that timed out
        # on a loaded 2-core machine); anything else must be a real answer.
        assert response.status_code in (200, 503), response.text[:500]
        if response.status_code == 200:
            body = response.json()
            if body["status"] in wanted:
                return body
        time.sleep(1)
    raise AssertionError(
        f"case still {body.get('status')} after {timeout_s} s: {body.get('status_detail')}"
    )


def test_case_goes_from_rest_to_the_real_model_and_back(
    live_server: Any, real_model_server: str, start_worker: Any
) -> None:
    worker = start_worker()
    key = issue_key("e2e-ehr")
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=POLL_TIMEOUT
    ) as client:
        began = time.monotonic()
        response = client.post("/api/v1/cases/", json=load_case())
        assert response.status_code == 202, response.text
        submitted = response.json()
        assert submitted["status"] == "queued"

        done = wait_for_status(
            client, submitted["links"]["self"], {"completed", "failed"}, CASE_TIMEOUT_S
        )
        # The small local model sometimes writes no usable sample (cut off, not JSON, or
        # ignoring the case). That is a visible failure with its reasons, and the case is
        # run again, as a clinician would; the big model in production rarely needs it.
        reruns = 0
        while done["status"] == "failed" and reruns < MAX_RERUNS:
            assert done["failure_reason"].startswith("no usable sample ("), done["failure_reason"]
            reruns += 1
            rerun = client.post(f"/api/v1/cases/{submitted['id']}/rerun/")
            assert rerun.status_code == 202, rerun.text
            done = wait_for_status(
                client, submitted["links"]["self"], {"completed", "failed"}, CASE_TIMEOUT_S
            )
        elapsed = time.monotonic() - began

    if done["status"] == "failed":
        # Every run of the small CPU model was refused by the answer gate: the whole path
        # still ran, each run answered by the model, stored, failed visibly and audited.
        assert done["failure_reason"].startswith("no usable sample ("), worker.log()[-3000:]
        assert done["result"] is None
        runs = list(ReasoningRun.objects.filter(case_id=done["id"]).order_by("created_at"))
        assert [r.outcome for r in runs] == ["failed"] * (MAX_RERUNS + 1)
        assert all(len(r.raw_response["choices"]) == 3 for r in runs)
        assert all(s.get("gate_reasons") or s.get("error") for r in runs for s in r.samples)
        codes = list(
            AuditEvent.objects.filter(case_id=done["id"])
            .order_by("id")
            .values_list("code", flat=True)
        )
        assert [c for c in codes if c != "case.viewed"] == [
            "case.submitted",
            *(["run.started", "run.failed", "case.rerun_requested"] * MAX_RERUNS),
            "run.started",
            "run.failed",
        ]
        assert verify_chain() is None
        reason = done["failure_reason"][:200]
        print(f"\n[e2e] every run refused by the gate ({elapsed:.1f} s): {reason}")
        return

    result = done["result"]
    assert result["reasoning_trace"].strip()
    assert result["trace_source"] in {
        "reasoning",
        "reasoning_content",
        "think_tags",
        "answer_steps",
    }
    assert result["assessment"]["differential"][0]["diagnosis"].strip()
    confidence = result["confidence"]
    assert 0.0 <= confidence["value"] <= 1.0
    assert confidence["method"] == "self-consistency.v2"
    assert confidence["components"]["requested_samples"] == 3
    assert confidence["components"]["usable_samples"] >= 1
    # The value is recomputable from the stored components: it came from the samples.
    components, weights = confidence["components"], confidence["components"]["weights"]
    recomputed = sum(weights[name] * components[name] for name in weights)
    assert abs(recomputed - confidence["value"]) < 1e-3
    assert result["model"]["name"] == "smollm2-135m-instruct"
    assert result["model"]["revision"].startswith("smollm2-135m-instruct@")
    assert result["prompt"]["version"] == "assessment.v2"

    runs = list(ReasoningRun.objects.filter(case_id=done["id"]).order_by("created_at"))
    assert [r.outcome for r in runs] == ["failed"] * reruns + ["completed"]
    run = runs[-1]
    assert len(run.raw_response["choices"]) == 3
    assert run.completion_tokens > 0 and run.latency_ms > 0
    assert run.parameters["n"] == 3

    codes = list(
        AuditEvent.objects.filter(case_id=done["id"]).order_by("id").values_list("code", flat=True)
    )
    assert [c for c in codes if c != "case.viewed"] == [
        "case.submitted",
        *(["run.started", "run.failed", "case.rerun_requested"] * reruns),
        "run.started",
        "run.completed",
    ]
    assert "case.viewed" in codes  # each GET while polling is a read of patient data
    assert verify_chain() is None
    print(
        f"\n[e2e] one case end to end: {elapsed:.1f} s, model latency {run.latency_ms} ms, "
        f"{run.completion_tokens} completion tokens, confidence {confidence['value']}, "
        f"re-runs {reruns}"
    )


def test_model_server_down_leaves_cases_waiting_then_they_complete(
    live_server: Any, real_model_server: str, start_worker: Any
) -> None:
    from tests.e2e.conftest import SwitchableProxy

    target = urlsplit(real_model_server)
    proxy = SwitchableProxy(target.hostname or "127.0.0.1", target.port or 80)
    proxy.down()  # the model server is "down" from the worker's point of view
    start_worker(
        BEDSIDE_MODEL_BASE_URL=proxy.base_url,
        BEDSIDE_RETRY_BACKOFF_BASE_S="2",
        BEDSIDE_RETRY_BACKOFF_MAX_S="4",
        BEDSIDE_MODEL_MAX_RETRIES="30",
    )
    key = issue_key("e2e-ehr-2")
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=POLL_TIMEOUT
    ) as client:
        urls = [
            client.post("/api/v1/cases/", json=load_case()).json()["links"]["self"]
            for _ in range(2)
        ]
        # Past Celery's default retry cap (3), which once stranded waiting cases.
        deadline = time.monotonic() + 120
        waiting: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            responses = [client.get(url) for url in urls]
            assert all(r.status_code in (200, 503) for r in responses)
            if all(r.status_code == 200 for r in responses):
                waiting = [r.json() for r in responses]
                if all(c["retries"] >= 5 for c in waiting):
                    break
            time.sleep(0.5)
        for case in waiting:
            assert case["status"] in {"queued", "running"}
            assert case["retries"] >= 5
        assert any("waiting for the model server" in c["status_detail"] for c in waiting)

        proxy.up()
        finished = [
            wait_for_status(client, url, {"completed", "failed"}, CASE_TIMEOUT_S) for url in urls
        ]
    # Each case got exactly one answer from the model once it was back. The small model's
    # answer may hold no usable sample (a visible failure with per-sample reasons, tested
    # with re-runs above); what must never happen is a lost case, a second run, or a case
    # that gave up on the model server.
    for case in finished:
        runs = list(ReasoningRun.objects.filter(case_id=case["id"]))
        assert len(runs) == 1
        assert runs[0].raw_response is not None  # the model answered
        if case["status"] == "failed":
            assert case["failure_reason"].startswith("no usable sample ("), case
        assert AuditEvent.objects.filter(case_id=case["id"], code="run.retry_scheduled").exists()
    assert Case.objects.filter(status__in=["completed", "failed"]).count() == 2
    proxy.down()

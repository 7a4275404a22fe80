"""/metrics: Prometheus text computed from the database, no patient data, loopback or token."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from bedside.logformat import JsonFormatter
from clinical import lifecycle
from clinical.models import Case
from tests.conftest import client_for
from tests.factories import submitted_case
from tests.fakes import FakeModelServer, choice, completion


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples by (name, labels), read by prometheus_client's own parser: what Prometheus
    can scrape, not what a regular expression of ours accepts."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"sample twice: {key}"
            samples[key] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_count_cases_runs_reviews_and_leave_out_patient_data(
    completed_case: Case, alice: User, fake_model: FakeModelServer
) -> None:
    failed = submitted_case(alice, priority="stat")
    fake_model.push(completion([choice(0, "{not json")]))  # no usable sample: a failed run
    lifecycle.case_run(case_id=failed.id)
    queued = submitted_case(alice, priority="routine")
    review = {"decision": "reject", "reason_code": "cds-not-applicable", "reason_text": "Not so."}
    posted = client_for(alice).post(
        f"/api/v1/cases/{completed_case.id}/reviews/", review, format="json"
    )
    assert posted.status_code == 201, posted.json()

    response = Client().get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    samples = parse(text)

    assert value(samples, "bedside_cases", status="completed", priority="urgent") == 1
    assert value(samples, "bedside_cases", status="failed", priority="stat") == 1
    assert value(samples, "bedside_cases", status="queued", priority="routine") == 1
    assert value(samples, "bedside_runs_total", outcome="completed") == 1
    assert value(samples, "bedside_model_errors_total", kind="failed_run") == 1
    assert value(samples, "bedside_reviews_total", decision="reject") == 1
    assert value(samples, "bedside_override_ratio") == 1.0
    assert value(samples, "bedside_confidence_count") == 1
    assert value(samples, "bedside_case_queue_wait_seconds_count") == 2  # the two that started
    assert value(samples, "bedside_case_total_seconds_count", status="completed") == 1
    assert value(samples, "bedside_model_seconds_count") == 2
    assert value(samples, "bedside_oldest_queued_case_age_seconds") >= 0
    port = fake_model.server.server_address[1]
    assert value(samples, "bedside_model_server_up", server=f"127.0.0.1:{port}") == 1

    # Histogram buckets are cumulative and end at the count.
    buckets = [
        v
        for (name, labels), v in samples.items()
        if name == "bedside_case_queue_wait_seconds_bucket"
    ]
    assert buckets == sorted(buckets)
    assert max(buckets) == 2

    for case in (completed_case, failed, queued):
        assert str(case.id) not in text
    for secret in ("Crushing chest pain", "ED-2026-000123", "Troponin", "alice", "Not so"):
        assert secret not in text


def test_metrics_through_the_proxy_or_from_elsewhere_need_the_token(
    db: None, fake_model: FakeModelServer, settings: Any
) -> None:
    settings.BEDSIDE_METRICS_TOKEN = "scrape-secret"
    client = Client()
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    wrong = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", HTTP_X_FORWARDED_FOR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-secret"
    )
    assert right.status_code == 200
    assert "bedside_cases" in right.content.decode()


def test_metrics_without_a_token_set_answer_only_this_host(
    db: None, fake_model: FakeModelServer, settings: Any
) -> None:
    settings.BEDSIDE_METRICS_TOKEN = ""
    client = Client()
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.168.1.9").status_code == 403


def test_json_log_lines_carry_level_logger_message_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "reasoning", logging.ERROR, __file__, 1, "case %s failed", ("c-1",), sys.exc_info()
        )
    record.request_id = "r-42"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "reasoning"
    assert entry["message"] == "case c-1 failed"
    assert entry["request_id"] == "r-42"
    assert "ValueError: boom" in entry["exception"]


def test_bedside_log_format_json_makes_every_line_json() -> None:
    script = (
        "import django, logging; django.setup(); "
        "logging.getLogger('reasoning').warning('model server %s out', 'gpu-01')"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bedside.settings",
        "BEDSIDE_LOG_FORMAT": "json",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1]["message"] == "model server gpu-01 out"
    assert lines[-1]["level"] == "WARNING"


def test_an_unknown_log_format_stops_start_up() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bedside.settings", "BEDSIDE_LOG_FORMAT": "xml"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "BEDSIDE_LOG_FORMAT" in result.stderr


def test_probes_and_scrapers_on_loopback_are_not_redirected_to_https(
    db: None, fake_model: FakeModelServer, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = True  # as with BEDSIDE_BEHIND_TLS_PROXY=true
    client = Client()
    assert client.get("/api/v1/cases/").status_code == 301
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path

"""``bench/instant_model.py``: the benchmark's instant model server gives every sample a
schema-valid, checked answer with log-probabilities, as vLLM would, so the pipeline
benchmark measures Bedside and not a model."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from typing import Any as SettingsWrapper

import httpx
import pytest

from reasoning import services as reasoning_services

ROOT = Path(__file__).resolve().parent.parent


def _load_module(name: str, file: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _load() -> ModuleType:
    return _load_module("bench_instant", "instant_model.py")


@pytest.fixture
def instant(settings: SettingsWrapper) -> Iterator[str]:
    server = _load().make_server(0, settings.BEDSIDE_MODEL_NAME)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.BEDSIDE_MODEL_BASE_URL = base_url
    settings.BEDSIDE_SAMPLES = 3
    reasoning_services.model_client.cache_clear()
    reasoning_services._served_model_revision.cache_clear()
    yield base_url
    server.shutdown()
    reasoning_services.model_client.cache_clear()
    reasoning_services._served_model_revision.cache_clear()


def test_every_sample_is_a_usable_checked_answer_with_logprobs(db: None, instant: str) -> None:
    case: dict[str, Any] = json.loads(
        (ROOT / "tests" / "data" / "case_chest_pain.json").read_text()
    )
    answer = reasoning_services.case_answer(case_input=case)
    assert answer.failure == ""
    assert answer.completed and answer.usable_samples == 3
    assert answer.confidence is not None
    assert answer.confidence.components["token_probability"] is not None  # from the logprobs


def test_each_of_the_benchmarks_complaints_gets_a_completed_answer(db: None, instant: str) -> None:
    """The benchmark's five case variants all go the completed-answer path: before, only
    the chest-pain variant did, and the other four failed the gate (an infarction citing
    no fact of a headache case), so the instant ceiling measured mostly failed runs."""
    pipeline = _load_module("bench_pipeline_cases", "pipeline.py")
    outcomes = []
    for case in pipeline.bench_cases(5):
        case.pop("external_id")
        answer = reasoning_services.case_answer(case_input=case)
        outcomes.append((case["chief_complaint"], answer.completed, answer.failure))
    assert [(complaint, True, "") for complaint, _, _ in outcomes] == outcomes


def test_metrics_report_requests_in_flight_as_vllm_does(instant: str) -> None:
    text = httpx.get(instant.removesuffix("/v1") + "/metrics").text
    assert text.startswith("vllm:num_requests_running") and text.strip().endswith(" 0")


def test_own_times_give_each_completion_once(db: None, instant: str) -> None:
    """The benchmark subtracts the server's own time from the run's measured latency, so
    each chat completion's own time is reported once, and then forgotten."""
    case: dict[str, Any] = json.loads(
        (ROOT / "tests" / "data" / "case_chest_pain.json").read_text()
    )
    reasoning_services.case_answer(case_input=case)
    reasoning_services.case_answer(case_input=case)
    own_times_url = instant.removesuffix("/v1") + "/bench/own-times"
    seconds = httpx.get(own_times_url).json()["seconds"]
    assert len(seconds) == 2 and all(0 < s < 5 for s in seconds)
    assert httpx.get(own_times_url).json() == {"seconds": []}

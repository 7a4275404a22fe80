"""``bench/pipeline.py``'s split of Bedside's own time per case (issue 20): each part from
the stored timestamps of the case, its run and its audit events, and the database work per
case."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest
from django.contrib.auth.models import User

from clinical import lifecycle
from clinical.models import Case, CaseStatus
from reasoning import services as reasoning_services
from tests import factories
from tests.factories import AGREEING_TOPS
from tests.fakes import (
    FakeModelServer,
    agreeing_completion,
    assessment,
    choice,
    completion,
    response_enum,
)

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_pipeline", ROOT / "bench" / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pipeline = _load()
T0 = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


def at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def test_each_part_of_a_case_comes_from_its_own_timestamps() -> None:
    times = pipeline.CaseTimes(
        created_at=at(0),
        started_at=at(500),  # 500 ms in the queue
        claim_recorded_at=at(520),  # 20 ms to claim
        run_created_at=at(620),  # 100 ms: model 60 + checks 15 + 25 unattributed
        finished_at=at(650),
        outcome_recorded_at=at(655),  # 35 ms to record
        model_s=0.060,
    )
    split = pipeline.case_split(times, model_own_s=0.010, checks_s=0.015)
    assert split == pytest.approx(
        {
            "queue": 0.5,
            "claim": 0.02,
            "model_call_overhead": 0.05,
            "checks": 0.015,
            "record": 0.035,
            "unattributed": 0.025,
            "own": 0.09,
        }
    )


def test_summary_gives_p50_and_p95_of_every_part_with_intake_first() -> None:
    times = [
        pipeline.CaseTimes(at(0), at(100 * i), at(100 * i + 10), at(100 * i + 30),
                           at(100 * i + 40), at(100 * i + 41), 0.01)
        for i in range(1, 21)
    ]  # fmt: skip
    summary = pipeline.split_summary(
        times, [0.1] * 18 + [0.9] * 2, model_own_s=0.004, checks_s=0.002
    )
    assert list(summary) == ["intake", *pipeline.SPLIT_PARTS]
    assert summary["intake"] == {"p50_ms": 100.0, "p95_ms": 900.0}
    assert summary["queue"]["p50_ms"] == pytest.approx(1000.0, abs=100)
    assert summary["queue"]["p95_ms"] == pytest.approx(1900.0, abs=100)
    assert summary["model_call_overhead"]["p50_ms"] == pytest.approx(6.0)
    assert summary["unattributed"]["p50_ms"] == pytest.approx(8.0)


def test_a_run_case_has_every_timestamp_the_split_reads(
    db: None, alice: User, fake_model: FakeModelServer
) -> None:
    case = factories.completed_case(alice, fake_model)
    (times,) = pipeline.cases_times([str(case.id)])
    assert times.created_at <= times.started_at <= times.claim_recorded_at
    assert times.claim_recorded_at <= times.run_created_at <= times.finished_at
    assert times.finished_at <= times.outcome_recorded_at
    split = pipeline.case_split(times, model_own_s=0.0, checks_s=0.0)
    assert all(split[part] >= 0 for part in ("queue", "claim", "record", "unattributed"))


def test_queries_of_one_case_counts_intake_and_run(db: None, fake_model: FakeModelServer) -> None:
    key = factories.issued_key().key
    fake_model.push(agreeing_completion(AGREEING_TOPS))
    fake_model.push(agreeing_completion(AGREEING_TOPS))
    counted = pipeline.queries_of_one_case(factories.load_case(), key)
    assert counted["intake_queries"] > 0 and counted["run_queries"] > 0
    assert counted["queries_per_case"] == counted["intake_queries"] + counted["run_queries"]
    statuses = set(Case.objects.values_list("status", flat=True))
    assert statuses == {CaseStatus.COMPLETED}  # both runs really ran


def test_the_web_servers_cpu_counts_the_process_and_its_children() -> None:
    """``web_cpu_ms_per_post`` reads gunicorn's master and workers from /proc: here, this
    process and a child that has spent CPU, read while the child is still running."""
    import os
    import subprocess

    pipeline = _load()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sum(range(3 * 10**7)); print(1, flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "1\n"  # it has worked
        own = os.times()
        counted = pipeline.process_tree_cpu_s(os.getpid())
        alone = pipeline.process_tree_cpu_s(child.pid)
    finally:
        child.communicate("\n")
    assert alone > 0  # the child's own CPU, read while it ran
    assert counted >= own.user + own.system - 0.05 + alone  # this process and its child


# --- the real-model comparison: the product's own request, and how the cases ended ----------


JUNK = "mildred-9-19-20-11-20"  # an identifier, not a diagnosis: the answer gate refuses it


def _run(case: Case, fake_model: FakeModelServer, response: dict[str, object]) -> None:
    fake_model.push(response)
    lifecycle.case_run(case_id=case.id)


def test_the_raw_side_sends_exactly_the_request_bedsides_client_sends(
    db: None, fake_model: FakeModelServer
) -> None:
    """The raw calls and the pipeline must ask the model the same thing, or their ratio
    compares different work: before, the raw side asked with a schema that allowed any
    citation (no fact ids) and the benchmark's shortened sampling."""
    case = factories.load_case()
    reasoning_services.case_answer(case_input=case)
    sent_by_bedside = fake_model.requests[-1]
    assert pipeline.raw_request_body(case) == sent_by_bedside
    assert sent_by_bedside["n"] == 3 and sent_by_bedside["max_tokens"] == 1024
    assert sent_by_bedside["logprobs"] is True
    assert response_enum(sent_by_bedside)  # the case's own fact ids


def test_raw_level_counts_finish_reasons_and_what_bedside_would_make_of_them(
    db: None, fake_model: FakeModelServer
) -> None:
    """One at a time, in order: the chest-pain case answered in kind, the next cut off by the
    token limit, the third with junk the answer gate refuses."""
    cases = pipeline.bench_cases(3)
    fake_model.push(agreeing_completion(AGREEING_TOPS))
    fake_model.push(
        completion([choice(i, '{"reasoning', finish_reason="length") for i in range(3)])
    )
    fake_model.push(completion([choice(i, json.dumps(assessment(JUNK))) for i in range(3)]))
    result = pipeline.raw_level(1, cases)
    assert fake_model.requests == [pipeline.raw_request_body(case) for case in cases]
    assert result["cases"] == 3 and result["output_tokens"] == 3 * 450
    assert result["would_complete"] == 1
    assert result["finish_reasons"] == {"length": 3, "stop": 6}
    assert result["sample_outcomes"] == {"answer gate": 3, "truncated": 3, "usable": 3}


def test_case_outcomes_count_each_failed_case_by_its_samples_errors(
    db: None, alice: User, fake_model: FakeModelServer
) -> None:
    completed = factories.completed_case(alice, fake_model)
    truncated, gated, mixed = (factories.submitted_case(alice) for _ in range(3))
    cut = '{"differential": '
    junk = json.dumps(assessment(JUNK))
    _run(
        truncated,
        fake_model,
        completion([choice(i, cut, finish_reason="length") for i in range(3)]),
    )
    _run(gated, fake_model, completion([choice(i, junk) for i in range(3)]))
    _run(
        mixed,
        fake_model,
        completion([choice(0, cut, finish_reason="length"), choice(1, junk), choice(2, junk)]),
    )
    outcomes = pipeline.case_outcomes([str(c.id) for c in (completed, truncated, gated, mixed)])
    assert outcomes["completed"] == 1 and outcomes["failed"] == 3
    assert outcomes["failure_reasons"] == {
        "answer gate": 1,
        "answer gate + truncated": 1,
        "truncated": 1,
    }
    assert outcomes["finish_reasons"] == {"length": 4, "stop": 8}
    assert outcomes["sample_outcomes"] == {"answer gate": 5, "truncated": 4, "usable": 3}
    assert outcomes["output_tokens"] == 4 * 450  # the fake's 150 per sample


def test_a_case_failed_without_a_run_counts_by_its_status_detail() -> None:
    assert pipeline.failure_kind("model server unavailable after 4 tries: …") == (
        "model unavailable"
    )
    assert pipeline.run_failure([], "POST /chat/completions: HTTP 400 BadRequestError") == (
        "model refused"
    )


def test_cases_per_level_one_number_for_all_or_one_per_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pipeline, "LEVELS", [1, 4])
    monkeypatch.setattr(pipeline, "CASES", [3])
    assert [pipeline.requests_at(level) for level in (1, 4)] == [3, 3]
    monkeypatch.setattr(pipeline, "CASES", [2, 8])
    assert [pipeline.requests_at(level) for level in (1, 4)] == [2, 8]
    monkeypatch.setattr(pipeline, "CASES", [2, 8, 9])
    with pytest.raises(SystemExit):
        pipeline.requests_at(1)


def test_a_phase_reports_the_cores_each_process_used_and_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real-model ratio depends on the CPU the model server got; each phase records it."""
    monkeypatch.setattr(pipeline, "model_server_pid", lambda: os.getppid())
    meter = pipeline.CpuMeter(this=os.getpid())
    sum(range(2 * 10**6))  # some CPU of this process's own
    read = meter.read()
    assert set(read["cores_used"]) == {"machine_busy", "model_server", "this", "bench_client"}
    assert read["cores_used"]["this"] > 0 and read["cores_used"]["bench_client"] > 0
    assert read["cores"] == os.cpu_count() and len(read["load_average_after"]) == 3


def test_tokens_per_model_core_second_only_where_the_model_servers_cpu_is_known() -> None:
    side = {"output_tokens_per_s": 140.0, "cores_used": {"model_server": 0.4}}
    assert pipeline.tokens_per_model_core_s(side) == 350.0
    assert side["tokens_per_model_core_s"] == 350.0
    assert pipeline.tokens_per_model_core_s({"output_tokens_per_s": 1.0, "cores_used": {}}) is None


def test_the_model_servers_pid_from_the_environment_or_the_local_stacks_pidfile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from devtools import localstack

    pidfile = tmp_path / "vllm.pid"
    monkeypatch.setattr(localstack, "model_pidfile", lambda: pidfile)
    monkeypatch.delenv("BENCH_MODEL_PID", raising=False)
    assert pipeline.model_server_pid() == 0  # no pidfile: no model server of ours
    pidfile.write_text(str(os.getpid()))
    assert pipeline.model_server_pid() == os.getpid()
    monkeypatch.setenv("BENCH_MODEL_PID", "12345")
    assert pipeline.model_server_pid() == 12345

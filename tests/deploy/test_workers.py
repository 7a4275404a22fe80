"""Several worker processes against one broker: cases spread across them, stat cases go to
their own queue and are taken first, and a worker that leaves (SIGTERM, or SIGKILL in the
middle of a case) loses no case. Real Celery worker processes (thread pool, as deployed) on
queues private to each test, the machine's Redis, the test database, and fake model servers
over real HTTP, one per worker, so that each server's requests count that worker's cases."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from clinical import services as clinical_services
from clinical import tasks as clinical_tasks
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseInput
from reasoning.models import ReasoningRun, RunOutcome
from tests.deploy.conftest import WorkerProcess, wait_until
from tests.factories import TEST_ACTOR, load_case
from tests.fakes import FakeModelServer


def submit(alice: User, count: int, *, priority: str = "routine", label: str = "") -> list[Case]:
    cases = []
    for i in range(count):
        data = load_case()
        data["priority"] = priority
        data["chief_complaint"] = f"Crushing chest pain, {label or priority} {i}"
        cases.append(
            clinical_services.case_submit(
                case_input=CaseInput.model_validate(data), actor=TEST_ACTOR, submitted_by=alice
            )
        )
    return cases


def all_completed(cases: list[Case]) -> bool:
    ids = [c.id for c in cases]
    return Case.objects.filter(id__in=ids, status=CaseStatus.COMPLETED).count() == len(ids)


def complaints(model: FakeModelServer) -> list[str]:
    """The chief complaint line of each prompt the server was sent, in order."""
    out = []
    for request in model.requests:
        lines = "\n".join(m["content"] for m in request["messages"]).splitlines()
        # The prompt lists the complaint's phrases as facts under their heading.
        start = lines.index("Chief complaint:") + 1
        end = next(i for i in range(start, len(lines)) if not lines[i].startswith("["))
        out.append(" ".join(lines[start:end]))
    return out


def test_stat_and_urgent_cases_go_to_the_stat_queue_and_routine_ones_to_the_routine_queue(
    alice: User, queues: tuple[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    routine_queue, stat_queue = queues
    stat_worker = start_worker("stat", stat_queue)
    routine_worker = start_worker("routine", routine_queue)
    stat_cases = submit(alice, 2, priority="stat") + submit(alice, 1, priority="urgent")
    routine_cases = submit(alice, 3, priority="routine")
    wait_until(lambda: all_completed(stat_cases + routine_cases), "all cases to complete")
    assert len(stat_worker.model.requests) == 3
    assert all("stat" in line or "urgent" in line for line in complaints(stat_worker.model))
    assert len(routine_worker.model.requests) == 3
    assert all("routine" in line for line in complaints(routine_worker.model))


def test_a_worker_on_both_queues_takes_stat_cases_first(
    alice: User, queues: tuple[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    routine_queue, stat_queue = queues
    # Queued while no worker runs: routine ones first, then the stat ones.
    cases = submit(alice, 3, priority="routine") + submit(alice, 2, priority="stat")
    worker = start_worker("both", f"{stat_queue},{routine_queue}", concurrency=1)
    wait_until(lambda: all_completed(cases), "all cases to complete", worker)
    order = complaints(worker.model)
    assert [("stat" in line) for line in order] == [True, True, False, False, False], order


def test_make_run_worker_finishes_a_later_stat_case_before_the_routine_queue(
    alice: User, queues: tuple[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    """Issue 18: a stat case sat queued 2:37 while a later routine one finished in 0:16.
    The worker started as `make run` starts it, with no queue settings, one thread."""
    model = FakeModelServer(model="fake-model").start()
    model.gate = threading.Event()  # hold the first routine case at the model
    worker = start_worker("make-run", None, concurrency=1, model=model)
    routine = submit(alice, 3, priority="routine")
    wait_until(lambda: len(model.requests) == 1, "the first routine case at the model", worker)
    later = submit(alice, 1, priority="stat") + submit(alice, 1, priority="urgent")
    model.gate.set()
    wait_until(lambda: all_completed(routine + later), "all cases to complete", worker)

    finished = {c.id: Case.objects.get(id=c.id).finished_at for c in routine + later}
    stat, urgent = later
    for waiting_routine in routine[1:]:
        assert finished[stat.id] < finished[waiting_routine.id]
        assert finished[urgent.id] < finished[waiting_routine.id]
    order = [line.rsplit("] ", 1)[-1] for line in complaints(model)]  # "[F3] stat 0"
    assert order == ["routine 0", "stat 0", "urgent 0", "routine 1", "routine 2"], order


def test_cases_spread_over_workers_and_none_is_lost_when_workers_leave(
    alice: User, queues: tuple[str, str], start_worker: Callable[..., WorkerProcess]
) -> None:
    routine_queue, stat_queue = queues
    both = f"{stat_queue},{routine_queue}"
    first = start_worker("first", both)
    second = start_worker("second", both)
    for worker in (first, second):
        worker.model.gate = threading.Event()  # hold each case at the model
    cases = submit(alice, 10)

    # Each worker holds as many cases as it has threads (4): the ten are shared out.
    wait_until(
        lambda: len(first.model.requests) == 4 and len(second.model.requests) == 4,
        "both workers to have four cases in flight",
    )
    assert Case.objects.filter(status=CaseStatus.RUNNING).count() == 8

    # SIGTERM: a warm shutdown finishes the cases in hand, then the worker leaves.
    first.signal(signal.SIGTERM)
    first.model.gate.set()
    assert first.wait_exit() == 0
    assert len(first.model.requests) == 4  # it took no new case while leaving

    # SIGKILL in the middle of four cases: nothing is acknowledged, nothing recorded.
    second.signal(signal.SIGKILL)
    second.wait_exit()
    running = list(Case.objects.filter(status=CaseStatus.RUNNING).values_list("id", flat=True))
    assert len(running) == 4

    third = start_worker("third", both)
    # The two cases never taken are still on the broker: the new worker takes them.
    # The four of the killed worker wait for their lease to end; here the lease is ended
    # rather than waited for, then the sweeper re-sends them as it would every minute.
    Case.objects.filter(id__in=running).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert sorted(clinical_tasks.cases_resend_stale(older_than_s=300)) == sorted(running)
    wait_until(lambda: all_completed(cases), "all ten cases to complete", third)

    assert len(third.model.requests) == 6
    for case in Case.objects.filter(id__in=[c.id for c in cases]):
        runs = ReasoningRun.objects.filter(case=case)
        assert [r.outcome for r in runs] == [RunOutcome.COMPLETED], case.id  # exactly once
        assert case.attempts == (2 if case.id in running else 1)


def test_workers_log_json_lines_when_asked(
    alice: User,
    queues: tuple[str, str],
    start_worker: Callable[..., WorkerProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BEDSIDE_LOG_FORMAT", "json")
    worker = start_worker("json", queues[0])
    cases = submit(alice, 1)
    wait_until(lambda: all_completed(cases), "the case to complete", worker)
    wait_until(lambda: "succeeded" in worker.log(), "the task's log line", worker)
    entries = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    messages = [e["message"] for e in entries]
    assert any(m.endswith(" ready.") for m in messages)
    assert any("reasoning.run_case" in m and "succeeded" in m for m in messages)
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert not any("Crushing chest pain" in m for m in messages)

"""Real Celery worker processes for the deploy tests: started as the systemd unit starts them
(thread pool, given queues), on queues private to each test, against the machine's broker,
the test database, and a fake model server of their own (real HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from bedside import paths
from bedside.celery import app as celery_app
from devtools import localstack
from tests.e2e.conftest import ARTIFACTS, worker_database_url
from tests.fakes import FakeModelServer

MODEL = "fake-model"


class WorkerProcess:
    """`celery worker --pool threads` as the systemd unit starts it, on the given queues;
    with ``queues=None`` as `make run` starts it: no --queues and no stat queue setting, so
    the worker consumes what the settings define by default."""

    def __init__(
        self, name: str, queues: str | None, model: FakeModelServer, concurrency: int
    ) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.model = model
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "BEDSIDE_QUEUE": celery_app.conf.task_default_queue,
            "BEDSIDE_STAT_QUEUE": settings.BEDSIDE_STAT_QUEUE,
            "BEDSIDE_MODEL_BASE_URL": model.base_url,
            "BEDSIDE_MODEL_NAME": MODEL,
            "BEDSIDE_RETRY_BACKOFF_BASE_S": "1",
        }
        consumes: tuple[str, ...] = ()
        if queues is None:
            for setting in ("BEDSIDE_STAT_QUEUE", "BEDSIDE_STAT_PRIORITIES"):
                env.pop(setting, None)
        else:
            consumes = ("--queues", queues)
        self.process = subprocess.Popen(
            localstack.worker_command(
                concurrency=str(concurrency),
                beat=False,
                extra=(*consumes, "--hostname", f"{name}@%h", "--without-heartbeat"),
            ),
            cwd=paths.PROJECT_ROOT,
            env=env,
            stdout=open(self.log_path, "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: " ready." in self.log(), f"worker {name} to start", self)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait_exit(self, timeout_s: float = 60) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_until(
    condition: Callable[[], bool], what: str, worker: WorkerProcess | None = None
) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        if worker is not None and worker.process.poll() is not None:
            raise AssertionError(f"worker exited while waiting for {what}:\n{worker.log()[-3000:]}")
        if time.monotonic() > deadline:
            tail = worker.log()[-3000:] if worker else ""
            raise AssertionError(f"gave up waiting for {what}\n{tail}")
        time.sleep(0.2)


@pytest.fixture
def queues(transactional_db: None, settings: Any) -> Iterator[tuple[str, str]]:
    """A routine and a stat queue private to this test; tasks sent here go to them."""
    routine = f"deploy-{uuid.uuid4().hex[:8]}"
    stat = f"{routine}.stat"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = routine
    settings.CELERY_TASK_DEFAULT_QUEUE = routine
    settings.BEDSIDE_STAT_QUEUE = stat
    yield routine, stat
    celery_app.conf.task_default_queue = previous


@pytest.fixture
def start_worker(queues: tuple[str, str]) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[tuple[WorkerProcess, FakeModelServer]] = []

    def start(
        name: str, consumes: str | None, concurrency: int = 4, model: FakeModelServer | None = None
    ) -> WorkerProcess:
        model = model or FakeModelServer(model=MODEL).start()
        worker = WorkerProcess(f"{queues[0]}-{name}", consumes, model, concurrency)
        started.append((worker, model))
        return worker

    yield start
    for worker, model in started:
        if model.gate is not None:
            model.gate.set()
        worker.stop()
        model.stop()

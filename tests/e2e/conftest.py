"""The real stack for end-to-end tests: the real vLLM serving the real small model, a
real Celery worker process, the real broker, PostgreSQL, and Django's live HTTP server.
Nothing here is faked."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from bedside import paths
from bedside.celery import app as celery_app
from devtools import localstack

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="session")
def real_model_server() -> Iterator[str]:
    """vLLM CPU with the small model; started once per session (make test starts it early)."""
    launched = localstack.model_up(wait=False)
    localstack.model_wait(timeout_s=900)
    yield settings.BEDSIDE_MODEL_BASE_URL
    if launched:
        localstack.model_down()


def worker_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    """A Celery worker in its own process, on a queue of its own and its stat queue (stat
    first, as every worker consumes them by default)."""

    def __init__(self, queue: str, env: dict[str, str], name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        self.process = subprocess.Popen(
            localstack.worker_command(
                concurrency="4",
                beat=False,
                extra=(
                    "--queues",
                    f"{queue}.stat,{queue}",
                    "--hostname",
                    f"{name}@%h",
                    "--without-heartbeat",
                ),
            ),
            cwd=paths.PROJECT_ROOT,
            env=env,
            stdout=open(self.log_path, "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while " ready." not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(transactional_db: None, settings: Any) -> Iterator:  # type: ignore[type-arg]
    """Start workers that share this test's database and queues private to this test (its
    stat and urgent cases go to the private stat queue, as the default routing does)."""
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.BEDSIDE_STAT_QUEUE = f"{queue}.stat"
    workers: list[Worker] = []

    def start(**overrides: str) -> Worker:
        env = {
            **os.environ,
            "DATABASE_URL": worker_database_url(),
            "BEDSIDE_QUEUE": queue,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            **overrides,
        }
        worker = Worker(queue, env, name=f"{queue}-{len(workers)}")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    celery_app.conf.task_default_queue = previous


class SwitchableProxy:
    """A TCP forwarder on loopback that can refuse connections, so the model server can
    "go down" and "come back" for the worker without a minute-long vLLM restart."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

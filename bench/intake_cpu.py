"""What one accepted intake POST costs this process, measured without the network or a
second process (issue 20): queries, CPU time, and a cProfile of the POST path.

Posts the benchmark's cases through Django's test client (the whole middleware, DRF,
authentication, throttling, validation, encryption, the audit event and the publish to the
broker after commit), in a database of its own (``BENCH_DATABASE_NAME``, default
``bedside_bench_intake_cpu``) and a queue of its own, purged after. Deterministic where
timings on a shared machine are not: the queries of one POST, and CPU time
(``time.process_time``) rather than wall time. Prints one JSON object; with ``--profile``
also the top entries of a cProfile over the same POSTs.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bedside CELERY_BROKER_URL=redis://... \\
      .venv/bin/python bench/intake_cpu.py [--posts 500] [--profile 25]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
QUEUE = f"bench-cpu-{uuid.uuid4().hex[:8]}"
BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "bedside_bench_intake_cpu")


def setup() -> None:
    import psycopg

    from bedside import paths

    base = os.environ.get("DATABASE_URL") or paths.owner_database_url()
    parts = urlsplit(base)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    os.environ.update(
        {
            "DATABASE_URL": urlunsplit(parts._replace(path=f"/{BENCH_DB}")),
            "BEDSIDE_QUEUE": QUEUE,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "bedside.settings",
        }
    )
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "-v0"], check=True)
    import django

    django.setup()


def cases(count: int) -> list[dict[str, Any]]:
    base = json.loads((ROOT / "tests" / "data" / "case_chest_pain.json").read_text())
    out = []
    for i in range(count):
        case = json.loads(json.dumps(base))
        case["external_id"] = f"CPU-{QUEUE}-{i:05d}"
        case["patient"]["age_years"] = 40 + i % 40
        out.append(case)
    return out


def purge() -> None:
    from kombu import Queue

    from bedside.celery import app as celery_app

    with celery_app.connection_for_write() as conn:
        for name in (QUEUE, f"{QUEUE}.stat"):
            Queue(name, channel=conn.default_channel).purge()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--profile", type=int, default=0, help="print the top N entries")
    args = parser.parse_args()
    setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from audit.services import Actor
    from bedside import roles
    from bedside.accounts import services as accounts_services
    from clinical.models import Case, CaseStatus

    key = accounts_services.api_key_issue(
        name=f"bench-{QUEUE}",
        role=roles.INTEGRATION,
        actor=Actor(label="bench", role="admin"),
        rate_limit_per_min=1_000_000,
    ).key
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {key}")
    bodies = [json.dumps(case) for case in cases(args.posts + 21)]

    def post(body: str) -> None:
        response = client.post("/api/v1/cases/", data=body, content_type="application/json")
        if response.status_code != 202:
            raise RuntimeError(f"intake answered {response.status_code}: {response.content!r}")

    try:
        for body in bodies[:20]:  # warm: today's data key, imports, connections
            post(body)
        with CaptureQueriesContext(connection) as captured:
            post(bodies[20])
        # Read now: the next request's request_started signal empties Django's query log.
        queries = [q["sql"] for q in captured.captured_queries]
        timed = bodies[21:]
        cpu, wall = time.process_time(), time.perf_counter()
        for body in timed:
            post(body)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        result: dict[str, Any] = {
            "commit": subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
            ).stdout.strip(),
            "posts": len(timed),
            "queries_per_post": len(queries),
            "queries": [sql[:160] for sql in queries],
            "cpu_ms_per_post": round(cpu / len(timed) * 1000, 3),
            "wall_ms_per_post": round(wall / len(timed) * 1000, 3),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waits on the database
            profiler.enable()
            for body in timed:
                post(body.replace('"CPU-', '"CPU-P-'))
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.profile)
            print(out.getvalue(), file=sys.stderr)
    finally:
        Case.objects.filter(status=CaseStatus.QUEUED).update(
            status=CaseStatus.FAILED, status_detail="benchmark intake only; not run"
        )
        purge()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

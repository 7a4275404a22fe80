"""How many audited events per second the chain takes, with 1, 8, 32 and 64 writers.

Each writer is a thread with its own PostgreSQL connection that loops
``with transaction.atomic(): audit.record(...)`` (one event per transaction, as an intake
POST or a case view writes it) for ``BENCH_AUDIT_SECONDS``. The writers are spread over
``BENCH_AUDIT_PROCESSES`` processes so one interpreter's lock does not cap the rate.

Per level it reports committed events/s, the p50/p99 time of one audited transaction, and
the time the chain lock was held: for each chaining (``audit.services.chain_pending``),
from taking the lock to its commit, measured by the function itself. At the end it checks
that every event written is in the chain and that the chain verifies.

It refuses any database whose name lacks "bench" (it writes a million rows if asked)::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bedside_bench \\
      .venv/bin/python bench/audit_chain.py [--levels 1,8,32,64] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LEGACY_LOCK = 0x6265647369646561  # the chain lock of record() before the sequencer


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")
    import django

    django.setup()


def _wait_for_start(ready: Any, start: Any) -> float:
    """Signal that this process is set up, then wait for the common start time."""
    ready.put(os.getpid())
    while start.value == 0.0:
        time.sleep(0.01)
    return float(start.value)


def _writer_process(threads: int, seconds: float, ready: Any, start: Any, out: Any) -> None:
    _django()
    from django.db import connection, connections, transaction

    from audit import services
    from audit.models import Action
    from audit.services import SYSTEM, record

    # Before the sequencer (the chain linked inside each writer's transaction): the lock is
    # taken here first, so its hold (taken → committed) can be timed from outside.
    legacy = not hasattr(services, "chain_pending")
    latencies: list[float] = []
    holds: list[float] = []
    lock = threading.Lock()

    def loop(worker: int) -> None:
        own: list[float] = []
        own_holds: list[float] = []
        try:
            while time.time() < start_at:
                time.sleep(0.001)
            end = start_at + seconds
            n = 0
            while time.time() < end:
                began = time.perf_counter()
                with transaction.atomic():
                    if legacy:
                        with connection.cursor() as cursor:
                            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LEGACY_LOCK])
                        locked = time.perf_counter()
                    record(
                        actor=SYSTEM,
                        action=Action.READ,
                        code="bench.event",
                        object_type="bench",
                        object_id=f"{os.getpid()}-{worker}-{n}",
                        details={"writer": worker, "n": n},
                    )
                done = time.perf_counter()
                own.append(done - began)
                if legacy:
                    own_holds.append(done - locked)
                n += 1
        finally:
            connections.close_all()
            with lock:
                latencies.extend(own)
                holds.extend(own_holds)

    start_at = _wait_for_start(ready, start)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    out.put((latencies, holds, cpu))


def _sequencer_process(seconds: float, interval: float, ready: Any, start: Any, out: Any) -> None:
    """What the worker's beat does: chain what has committed, every ``interval`` seconds."""
    _django()
    stop_at = _wait_for_start(ready, start) + seconds + 0.5
    from django.db import connections

    from audit import services

    holds: list[float] = []
    if not hasattr(services, "chain_pending"):
        out.put({"holds": holds, "chained": 0})
        return
    chain_pending = services.chain_pending
    chained = 0
    while time.time() < stop_at:
        result = chain_pending()
        chained += result.chained
        if result.chained:
            holds.append(result.lock_held_s)
        time.sleep(interval)
    connections.close_all()
    out.put({"holds": holds, "chained": chained})


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_level(writers: int, seconds: float, processes: int, interval: float) -> dict[str, Any]:
    from django.db import connection

    from audit import services
    from audit.models import AuditEvent

    connection.close()
    before = AuditEvent.objects.count()
    connection.close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    seq_out = ctx.Queue()
    shares = [
        writers // processes + (1 if i < writers % processes else 0) for i in range(processes)
    ]
    ready = ctx.Queue()
    start = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(target=_writer_process, args=(n, seconds, ready, start, out))
        for n in shares
        if n
    ]
    sequencer = ctx.Process(
        target=_sequencer_process, args=(seconds, interval, ready, start, seq_out)
    )
    for proc in [*procs, sequencer]:
        proc.start()
    for _ in range(len(procs) + 1):
        ready.get()  # every process imported Django first: the start is common
    start.value = time.time() + 0.5
    latencies: list[float] = []
    writer_holds: list[float] = []
    client_cpu = 0.0
    for _ in procs:
        got, held, cpu = out.get()
        latencies.extend(got)
        writer_holds.extend(held)
        client_cpu += cpu
    seq = seq_out.get()
    for proc in [*procs, sequencer]:
        proc.join()
    holds = seq["holds"] + writer_holds
    if hasattr(services, "chain_pending"):
        tail = services.chain_pending()  # anything committed after the sequencer's last pass
        seq["chained"] += tail.chained
        if tail.chained:
            holds.append(tail.lock_held_s)
    written = AuditEvent.objects.count() - before
    return {
        "writers": writers,
        "events": written,
        "events_per_s": round(written / seconds, 1),
        # The writers' own CPU (Django, psycopg, threads) per event, all processes together.
        "client_cpu_ms_per_event": round(client_cpu / max(written, 1) * 1000, 3),
        "txn_p50_ms": round(_pct(latencies, 0.5) * 1000, 2),
        "txn_p99_ms": round(_pct(latencies, 0.99) * 1000, 2),
        "chainings": len(holds),
        "chained_by_sequencer": seq["chained"],
        "lock_held_p50_ms": round(_pct(holds, 0.5) * 1000, 2),
        "lock_held_max_ms": round(max(holds, default=0.0) * 1000, 2),
        "lock_held_share": round(sum(holds) / seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default=os.environ.get("BENCH_AUDIT_LEVELS", "1,8,32,64"))
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("BENCH_AUDIT_SECONDS", "5"))
    )
    parser.add_argument(
        "--processes", type=int, default=int(os.environ.get("BENCH_AUDIT_PROCESSES", "4"))
    )
    parser.add_argument("--interval", type=float, default=0.2, help="sequencer pause, seconds")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    _django()
    from django.db import connection

    from audit.models import AuditEvent
    from audit.services import chain_verify

    name = connection.settings_dict["NAME"]
    if "bench" not in name:
        sys.exit(f"refusing to write benchmark events into {name!r}: use a database named *bench*")
    load_before = os.getloadavg()
    rows = []
    for level in [int(x) for x in args.levels.split(",")]:
        row = run_level(level, args.seconds, min(args.processes, level), args.interval)
        rows.append(row)
        print(json.dumps(row), flush=True)
    report = chain_verify()
    unchained = AuditEvent.objects.filter(chain_position__isnull=True).count()
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "cores": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "seconds_per_level": args.seconds,
        "levels": rows,
        "chain_ok": report.ok,
        "events_checked": report.events_checked,
        "unchained_after": unchained,
    }
    print(f"chain ok={report.ok} events={report.events_checked} unchained={unchained}")
    out = (
        args.out
        or ROOT / "bench" / "results" / f"audit-chain-{result['when'].replace(':', '')}.json"
    )
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

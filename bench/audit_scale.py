"""Scale benchmark for the audit trail (not a test): fill a separate database with
100,000 cases and 1,000,000 audit events, then time what an auditor does.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/bedside_bench_audit \\
        python bench/audit_scale.py [--cases 100000 --events 1000000] [--refill]

Targets (issue 4): the filtered case list and the case page under 300 ms each; the whole
chain verified (`verify_audit`) in under 60 s. The database is created and migrated when
missing, and filled once (COPY through psycopg; the hash chain computed in Python, streamed
in id order, exactly as `audit.services.record` would have chained it); later runs reuse it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bedside_bench_audit"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")

import django  # noqa: E402  (settings come from the environment set above)
import psycopg  # noqa: E402

REVISIONS = [
    ("deepseek-r1-distill-qwen-7b", "sha256:7b1e0c2f"),
    ("deepseek-r1-distill-qwen-7b", "sha256:9a44d1e7"),
    ("smollm2-135m-instruct", "sha256:135a0b11"),
]
START = datetime(2026, 5, 1, tzinfo=UTC)


def ensure_database(url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = info["dbname"]
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def timed(label: str, fn: Callable[[], Any], repeat: int = 5) -> float:
    fn()  # warm: plans, caches, the connection
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    median = statistics.median(samples)
    print(
        f"  {label:<58} median {median:7.1f} ms   (min {min(samples):.1f}, max {max(samples):.1f})"
    )
    return median


TRACE = "The pain, ECG changes and troponin point to an acute MI..."
ASSESSMENT = json.dumps({"differential": [{"diagnosis": "Acute MI"}]})


def fill(n_cases: int, n_events: int, seed: int = 7) -> None:
    from django.contrib.auth.models import User
    from django.db import connection

    from audit.services import GENESIS_HASH, SYSTEM, Actor, canonical_json, chain_pending
    from bedside import roles
    from bedside.accounts import services as accounts_services

    rng = random.Random(seed)
    actor = Actor(label="bench", role="admin")
    clinicians = [
        accounts_services.user_ensure(
            username=f"clinician{i:02d}",
            password="bench-password-1",
            role=roles.CLINICIAN,
            actor=actor,
        )
        for i in range(40)
    ]
    accounts_services.user_ensure(
        username="carol", password="bench-password-1", role=roles.AUDITOR, actor=actor
    )
    keys = [
        accounts_services.api_key_issue(
            name=f"ehr-{i}", role=roles.INTEGRATION, actor=actor
        ).api_key.user
        for i in range(3)
    ]
    submitters = [(u.pk, u.username, "clinician") for u in clinicians] + [
        (u.pk, u.username, "integration") for u in keys
    ]
    template = json.loads((ROOT / "tests" / "data" / "case_chest_pain.json").read_text())
    from bedside.vault.encryption import current_data_key, encrypt, lookup_hash

    # Patient data goes in encrypted, as Bedside itself stores it (one data key for the load).
    data_key = current_data_key()
    table_of = {
        "external_id": "clinical_case",
        "input": "clinical_case",
        "assessment": "reasoning_reasoningrun",
        "reasoning_trace": "reasoning_reasoningrun",
        "samples": "reasoning_reasoningrun",
        "reason_text": "clinical_clinicianreview",
    }

    def seal(column: str, text: str) -> str:
        return encrypt(text, purpose=f"{table_of[column]}.{column}", key=data_key)

    raw = connection.connection  # the psycopg connection under Django's
    with connection.cursor() as cursor:
        # Link what is pending first, so the copied events continue the chain's tail.
        chain_pending()
        cursor.execute(
            "SELECT hash, chain_position FROM audit_auditevent "
            "WHERE chain_position IS NOT NULL ORDER BY chain_position DESC LIMIT 1"
        )
        row = cursor.fetchone()
    prev_hash, position = row if row else (GENESIS_HASH, 0)

    spacing = (182 * 24 * 3600) / n_cases  # half a year of cases
    started = time.perf_counter()
    case_rows: list[tuple[Any, ...]] = []
    run_rows: list[tuple[Any, ...]] = []
    review_rows: list[tuple[Any, ...]] = []
    event_count = 0

    def event(
        at: datetime,
        who: tuple[int | None, str, str],
        action: str,
        code: str,
        case_id: str,
        object_type: str,
        object_id: str,
        details: dict[str, Any],
        outcome: str = "success",
    ) -> tuple[Any, ...]:
        nonlocal prev_hash, event_count, position
        payload = {
            "recorded_at": at.isoformat(timespec="microseconds"),
            "actor_id": who[0],
            "actor_label": who[1],
            "role": who[2],
            "action": action,
            "code": code,
            "outcome": outcome,
            "object_type": object_type,
            "object_id": object_id,
            "case_id": case_id,
            "source_address": "10.20.0.7" if who[0] else None,
            "request_id": uuid.UUID(int=rng.getrandbits(128)).hex if who[0] else "",
            "details": details,
        }
        digest = hashlib.sha256(prev_hash.encode())
        digest.update(canonical_json(payload).encode())
        own = digest.hexdigest()
        row = (
            at,
            who[0],
            who[1],
            who[2],
            action,
            code,
            outcome,
            object_type,
            object_id,
            case_id,
            payload["source_address"],
            payload["request_id"],
            canonical_json(details),
            prev_hash,
            own,
            position + 1,
        )
        prev_hash = own
        position += 1
        event_count += 1
        return row

    system = (None, SYSTEM.label, SYSTEM.role)
    auditor = User.objects.get(username="carol")
    carol = (auditor.pk, "carol", "auditor")

    def events_for_all_cases() -> Iterator[tuple[Any, ...]]:
        review_id = 0
        budget = n_events
        for i in range(n_cases):
            run_id = i + 1
            case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
            cid = str(case_id)
            created = START + timedelta(seconds=i * spacing + rng.random())
            sub = rng.choice(submitters)
            failed = rng.random() < 0.04
            status = "failed" if failed else "completed"
            model_name, revision = REVISIONS[min(2, int(i / n_cases * 3 + rng.random() * 0.3))]
            data = dict(template, external_id=f"ED-2026-{i:06d}")
            data["patient"] = dict(template["patient"], age_years=18 + i % 80)
            finished = created + timedelta(seconds=20 + rng.random() * 40)
            case_rows.append(
                (
                    case_id,
                    seal("external_id", data["external_id"]),
                    lookup_hash(data["external_id"]),
                    rng.choice(["routine", "urgent", "stat"]),
                    status,
                    "" if not failed else "no usable sample",
                    seal("input", json.dumps(data)),
                    sub[0],
                    created,
                    finished,
                    created + timedelta(seconds=1),
                    finished,
                    1,
                    0,
                )
            )
            yield event(
                created,
                sub,
                "C",
                "case.submitted",
                cid,
                "case",
                cid,
                {"priority": "routine", "setting": "emergency"},
            )
            yield event(
                created + timedelta(seconds=1),
                system,
                "E",
                "run.started",
                cid,
                "case",
                cid,
                {"attempt": 1, "retries": 0},
            )
            confidence = None if failed else round(min(1.0, max(0.0, rng.betavariate(5, 2))), 3)
            run_rows.append(
                (
                    run_id,
                    case_id,
                    finished,
                    "failed" if failed else "completed",
                    "no usable sample" if failed else "",
                    model_name,
                    revision,
                    "v3",
                    "ab" * 32,
                    json.dumps({"n": 3, "temperature": 0.6}),
                    None if failed else seal("assessment", ASSESSMENT),
                    "" if failed else seal("reasoning_trace", TRACE),
                    "" if failed else "reasoning",
                    confidence,
                    "" if failed else "self_consistency",
                    json.dumps({} if failed else {"agreement": confidence, "mean_logprob": -0.4}),
                    900,
                    400,
                    21000,
                )
            )
            yield event(
                finished,
                system,
                "E",
                "run.failed" if failed else "run.completed",
                cid,
                "reasoning_run",
                str(run_id),
                {"confidence": confidence, "model": model_name, "latency_ms": 21000},
                "failure" if failed else "success",
            )
            budget -= 3
            reviewed = not failed and rng.random() < 0.6
            if reviewed:
                review_id += 1
                p_override = 0.5 * (1 - (confidence or 0)) + 0.05
                decision = (
                    "accept" if rng.random() > p_override else rng.choice(["modify", "reject"])
                )
                reviewer = rng.choice(clinicians)
                at = finished + timedelta(minutes=5 + rng.random() * 60)
                review_rows.append(
                    (
                        review_id,
                        case_id,
                        run_id,
                        reviewer.pk,
                        at,
                        decision,
                        "" if decision == "accept" else "cds-not-applicable",
                        "" if decision == "accept" else seal("reason_text", "clinical judgement"),
                        "api",
                    )
                )
                yield event(
                    at,
                    (reviewer.pk, reviewer.username, "clinician"),
                    "C",
                    "review.recorded",
                    cid,
                    "review",
                    str(review_id),
                    {"decision": decision, "run_id": run_id, "source": "api"},
                )
                budget -= 1
            # Reads fill the rest of the budget evenly: the submitter polling, an auditor.
            left = n_cases - i
            views = budget // left if left else 0
            if left > 1 and rng.random() < (budget % left) / left:
                views += 1
            for v in range(views):
                who = sub if v % 3 else carol
                yield event(
                    finished + timedelta(seconds=70 + v),
                    who,
                    "R",
                    "case.viewed",
                    cid,
                    "case",
                    cid,
                    {"status": status},
                )
            budget -= views

    columns = (
        "recorded_at, actor_id, actor_label, role, action, code, outcome, object_type, "
        "object_id, case_id, source_address, request_id, details, prev_hash, hash, chain_position"
    )
    with raw.cursor() as cur:
        with cur.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
            for row in events_for_all_cases():
                copy.write_row(row)
        print(
            f"  {event_count} audit events chained and copied "
            f"({time.perf_counter() - started:.0f} s)"
        )
        with cur.copy(
            "COPY clinical_case (id, external_id, external_id_hash, priority, status, "
            "status_detail, input, submitted_by_id, created_at, updated_at, started_at, "
            "finished_at, attempts, retries) FROM STDIN"
        ) as copy:
            for row in case_rows:
                copy.write_row(row)
        with cur.copy(
            "COPY reasoning_reasoningrun (id, case_id, created_at, outcome, failure_reason, "
            "model_name, model_revision, prompt_version, prompt_sha256, parameters, assessment, "
            "reasoning_trace, trace_source, confidence, confidence_method, confidence_components, "
            "prompt_tokens, completion_tokens, latency_ms, samples, finish_reasons) FROM STDIN"
        ) as copy:
            for row in run_rows:
                copy.write_row((*row, seal("samples", "[]"), "[]"))
        with cur.copy(
            "COPY clinical_clinicianreview (id, case_id, run_id, reviewer_id, created_at, "
            "decision, reason_code, reason_text, source, card_uuid, hook_instance) FROM STDIN"
        ) as copy:
            for row in review_rows:
                copy.write_row((*row, "", ""))
        for table in ("reasoning_reasoningrun", "clinical_clinicianreview"):
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"  filled: {len(case_rows)} cases, {len(run_rows)} runs, {len(review_rows)} reviews, "
        f"{event_count} events in {time.perf_counter() - started:.0f} s"
    )


def measure() -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from audit.models import AuditEvent
    from audit.services import chain_verify
    from clinical.models import Case

    print(
        f"database: {connection.settings_dict['NAME']}: {Case.objects.count()} cases, "
        f"{AuditEvent.objects.count()} audit events"
    )
    client = Client(HTTP_HOST="localhost")
    assert client.login(username="carol", password="bench-password-1")
    ids = list(Case.objects.order_by("?").values_list("id", flat=True)[:7])

    def get(path: str, params: dict[str, str] | None = None) -> Callable[[], None]:
        def call() -> None:
            response = client.get(path, params or {})
            assert response.status_code == 200, (path, response.status_code)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)

        return call

    print("auditor screens (Django test client, whole request incl. the audit event it writes):")
    results = {
        "case list, default (newest first)": timed("case list, newest first", get("/audit/cases/")),
        "case list, filtered": timed(
            "case list: one month, rejected, by people",
            get(
                "/audit/cases/",
                {
                    "since": "2026-07-01",
                    "until": "2026-07-31",
                    "decision": "reject",
                    "system": "person",
                },
            ),
        ),
        "case list, filtered by revision and band, sorted by confidence": timed(
            "case list: revision + low confidence, sort by confidence",
            get(
                "/audit/cases/",
                {"model_revision": REVISIONS[1][1], "confidence": "low", "sort": "-confidence"},
            ),
        ),
        "case list, sorted by review decision (all cases)": timed(
            "case list: all cases sorted by review decision",
            get("/audit/cases/", {"sort": "decision"}),
        ),
        "case list, one clinician, page 40": timed(
            "case list: one clinician, page 40",
            get("/audit/cases/", {"clinician": "clinician07", "page": "40"}),
        ),
    }
    case_times = []
    for case_id in ids[:5]:
        case_times.append(timed(f"case page {case_id}", get(f"/audit/cases/{case_id}/"), repeat=3))
    results["case page (median of 5 cases)"] = statistics.median(case_times)
    results["event list, one actor, one week"] = timed(
        "event list: one actor, one week",
        get(
            "/audit/events/",
            {"actor": "clinician07", "since": "2026-08-01T00:00", "until": "2026-08-08T00:00"},
        ),
    )
    results["events API, one case"] = timed(
        "events API: one case", get("/api/v1/audit/events/", {"case": str(ids[5])})
    )
    results["overview charts"] = timed("overview (4 charts over all reviews)", get("/audit/"), 3)

    print("verify_audit (the whole chain):")
    started = time.perf_counter()
    report = chain_verify()
    seconds = time.perf_counter() - started
    print(f"  chain_verify: ok={report.ok}, {report.events_checked} events in {seconds:.1f} s")
    started = time.perf_counter()
    call_command("verify_audit")
    print(f"  manage.py verify_audit (in process): {time.perf_counter() - started:.1f} s")
    print("summary (ms):", json.dumps({k: round(v, 1) for k, v in results.items()}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--refill", action="store_true", help="drop and refill the database")
    parser.add_argument("--measure-only", action="store_true")
    args = parser.parse_args()

    url = os.environ["DATABASE_URL"]
    if "bench" not in str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", "")):
        sys.exit(
            "refusing: DATABASE_URL must name a benchmark database (its name contains 'bench')"
        )
    if args.refill:
        info = psycopg.conninfo.conninfo_to_dict(url)
        with psycopg.connect(
            psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{info["dbname"]}" WITH (FORCE)')
    ensure_database(url)
    django.setup()
    from django.core.management import call_command

    from audit.models import AuditEvent

    call_command("migrate", verbosity=0)
    if not args.measure_only and AuditEvent.objects.count() < args.events // 2:
        print(f"filling: {args.cases} cases, {args.events} events")
        fill(args.cases, args.events)
    measure()


if __name__ == "__main__":
    main()

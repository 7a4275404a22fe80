"""What encryption at rest costs, in one run: each ratio compares the same work with and
without it (BENCHMARKS.md, "Encryption at rest").

    make bench-encryption     # the embedded PostgreSQL, database bedside_bench_encryption
    BENCH_DATABASE_URL=postgresql://…/bedside_bench_encryption python bench/encryption.py

1. one value: JSON-encode + decode of the chest-pain case vs the same plus encrypt + decrypt;
2. PostgreSQL round trip of 500 cases: INSERT + SELECT of the JSON as plain text vs as the
   stored ciphertext, through the same connection (so the ratio is what the database and the
   crypto add, not Django);
3. the data key: reading today's key (one indexed SELECT) as every encrypted write does.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bedside import paths  # noqa: E402

# A database of its own, never DATABASE_URL's (the script makes a data key and a table).
os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL") or (
    paths.owner_database_url().rsplit("/", 1)[0] + "/bedside_bench_encryption"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")

import django  # noqa: E402  (settings come from the environment set above)

ROUNDS = 2000
CASES = 500


def per_call_us(fn: Callable[[], object], rounds: int) -> float:
    """Median of 5 batches, microseconds per call."""
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(rounds):
            fn()
        batches.append((time.perf_counter() - started) / rounds * 1e6)
    return statistics.median(batches)


def main() -> None:
    import psycopg

    from bench.audit_scale import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bedside.vault import encryption

    call_command("migrate", verbosity=0)
    case = json.loads((ROOT / "tests" / "data" / "case_chest_pain.json").read_text())
    key = encryption.current_data_key()
    purpose = "clinical_case.input"
    text = json.dumps(case)

    plain_us = per_call_us(lambda: json.loads(json.dumps(case)), ROUNDS)
    sealed_us = per_call_us(
        lambda: json.loads(
            encryption.decrypt(
                encryption.encrypt(json.dumps(case), purpose=purpose, key=key), purpose=purpose
            )
        ),
        ROUNDS,
    )
    key_us = per_call_us(encryption.current_data_key, 200)
    sealed = encryption.encrypt(text, purpose=purpose, key=key)

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        db.execute("CREATE TEMP TABLE bench_values (id serial PRIMARY KEY, value text)")

        def round_trip(make: Callable[[], str], read: Callable[[str], object]) -> float:
            started = time.perf_counter()
            with db.transaction():
                for _ in range(CASES):
                    db.execute("INSERT INTO bench_values (value) VALUES (%s)", [make()])
            for (value,) in db.execute("SELECT value FROM bench_values"):
                read(value)
            db.execute("TRUNCATE bench_values")
            return (time.perf_counter() - started) / CASES * 1e6

        plain_db = statistics.median(
            round_trip(lambda: json.dumps(case), json.loads) for _ in range(5)
        )
        sealed_db = statistics.median(
            round_trip(
                lambda: encryption.encrypt(json.dumps(case), purpose=purpose, key=key),
                lambda v: json.loads(encryption.decrypt(v, purpose=purpose)),
            )
            for _ in range(5)
        )
    connection.close()

    print(f"case input: {len(text)} bytes of JSON, {len(sealed)} bytes stored encrypted")
    print(
        f"1. encode+decode      plain {plain_us:8.1f} us   encrypted {sealed_us:8.1f} us   "
        f"ratio {sealed_us / plain_us:5.2f}   (crypto adds {sealed_us - plain_us:.1f} us)"
    )
    print(
        f"2. DB write+read/case plain {plain_db:8.1f} us   encrypted {sealed_db:8.1f} us   "
        f"ratio {sealed_db / plain_db:5.2f}"
    )
    print(f"3. today's data key   {key_us:8.1f} us per encrypted write (one indexed SELECT)")


if __name__ == "__main__":
    main()

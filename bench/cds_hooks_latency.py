"""How long a CDS Hooks patient-view call takes to answer, over the Synthea patients: with
the whole prefetch sent by the EHR, and with only the Patient sent (Bedside fetches the
rest from the EHR's FHIR server: ``tests/fhir_server.py`` as a local process).

    BENCH_DATABASE_URL=postgresql://…/bedside_bench_cds_hooks python bench/cds_hooks_latency.py

The database is made and migrated if missing. Cases are queued on an in-memory broker (no
worker, no model): this times the hook's answer, which never waits for the assessment.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("BENCH_SYNTHEA", "/work/shared/data/synthea-r4"))
if not DATA.is_dir():
    DATA = ROOT / "tests" / "data" / "public" / "synthea-r4"
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bedside_bench_cds_hooks"
)
os.environ["CELERY_BROKER_URL"] = "memory://"
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")

import django  # noqa: E402  (settings come from the environment set above)
import httpx  # noqa: E402
import jwt  # noqa: E402
import psycopg  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

ISSUER = "https://bench-ehr.local/"
PATH = "/cds-services/bedside-patient-view"
TOKEN = secrets.token_urlsafe(16)  # the FHIR server checks it
ROUNDS = 3


def ensure_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from audit.services import Actor
    from bedside.accounts.ehr_clients import ehr_client_add
    from clinical.ehr.cds_hooks import SERVICES

    call_command("migrate", verbosity=0)
    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())) | {"kid": "b1"}
    ehr_client_add(
        issuer=ISSUER, jwks={"keys": [public]}, actor=Actor(label="bench", role="system")
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fhir_server", "--data", str(DATA), "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    fhir = f"http://127.0.0.1:{int(server.stdout.readline().split()[-1])}"
    templates = SERVICES["bedside-patient-view"].prefetch
    patients = []
    for path in sorted(DATA.glob("*.json")):
        bundle = json.loads(path.read_text())
        patients += [
            e["resource"]["id"]
            for e in bundle.get("entry") or []
            if e["resource"]["resourceType"] == "Patient"
        ]
    full: dict[str, dict[str, Any]] = {}
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for pid in patients:  # what an EHR that sends the whole prefetch would send
            full[pid] = {
                k: http.get(f"{fhir}/{t.replace('{{context.patientId}}', pid)}").json()
                for k, t in templates.items()
            }
    client = Client()
    times: dict[str, list[float]] = {"whole prefetch": [], "patient only, rest fetched": []}
    statuses: dict[str, list[int]] = {mode: [] for mode in times}
    try:
        for round_ in range(ROUNDS):
            for pid in patients:
                modes = list(times) if round_ % 2 else list(reversed(times))
                for mode in modes:
                    prefetch = (
                        full[pid] if mode == "whole prefetch" else {"patient": full[pid]["patient"]}
                    )
                    body = {
                        "hook": "patient-view",
                        "hookInstance": str(uuid.uuid4()),
                        "fhirServer": fhir,
                        "fhirAuthorization": {
                            "access_token": TOKEN,
                            "token_type": "Bearer",
                            "expires_in": 300,
                            "scope": "user/*.read",
                            "subject": "bedside",
                        },
                        "context": {"userId": "Practitioner/bench", "patientId": pid},
                        "prefetch": prefetch,
                    }
                    now = int(time.time())
                    token = jwt.encode(
                        {
                            "iss": ISSUER,
                            "aud": f"http://testserver{PATH}",
                            "exp": now + 300,
                            "iat": now,
                            "jti": str(uuid.uuid4()),
                        },
                        key,
                        algorithm="ES384",
                        headers={"kid": "b1"},
                    )
                    start = time.perf_counter()
                    response = client.post(
                        PATH,
                        json.dumps(body),
                        content_type="application/json",
                        HTTP_AUTHORIZATION=f"Bearer {token}",
                    )
                    times[mode].append((time.perf_counter() - start) * 1000)
                    statuses[mode].append(response.status_code)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"{len(patients)} Synthea patients x {ROUNDS} rounds, in-process Django test client")
    for mode, values in times.items():
        ok = sum(s == 200 for s in statuses[mode])
        print(
            f"{mode:30s} n={len(values):3d} ok={ok:3d} median={statistics.median(values):7.1f} ms"
            f"  p95={percentile(values, 0.95):7.1f} ms  max={max(values):7.1f} ms"
        )


if __name__ == "__main__":
    main()

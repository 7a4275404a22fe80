"""An install that ran before encryption at rest: its migration encrypts the rows already
there (cases, runs, reviews), keeps them readable, fills the external-id hash, and leaves the
append-only triggers on. Runs the real `manage.py migrate` against a database of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from bedside import paths
from bedside.vault.encryption import lookup_hash

# Migrates a scratch database from zero in subprocesses: about 20 s.
pytestmark = pytest.mark.slow

CANARY = "Mgr4Canary"
CASE_ID = uuid.UUID("00000000-0000-4000-8000-00000000c0de")


@pytest.fixture
def scratch_database(db: None) -> Iterator[str]:
    params = connection.settings_dict
    name = f"bedside_migration_{uuid.uuid4().hex[:8]}"
    auth = params["USER"] + (f":{params['PASSWORD']}" if params["PASSWORD"] else "")
    server = f"postgresql://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=paths.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def rows_before_encryption(url: str) -> None:
    case_input = {"chief_complaint": f"{CANARY} chest pain", "patient": {"age_years": 61}}
    with psycopg.connect(url, autocommit=True) as db:
        user_id = db.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) VALUES ('!', false, 'old.clinician', "
            "'', '', '', false, true, now()) RETURNING id"
        ).fetchone()[0]
        db.execute(
            "INSERT INTO clinical_case (id, external_id, priority, status, status_detail, input, "
            "created_at, updated_at, attempts, retries, submitted_by_id) VALUES "
            "(%s, %s, 'routine', 'completed', '', %s, now(), now(), 1, 0, %s)",
            [CASE_ID, f"ED-{CANARY}", json.dumps(case_input), user_id],
        )
        run_id = db.execute(
            "INSERT INTO reasoning_reasoningrun (created_at, outcome, failure_reason, model_name, "
            "model_revision, prompt_version, prompt_sha256, parameters, assessment, "
            "reasoning_trace, trace_source, confidence_method, confidence_components, samples, "
            "finish_reasons, prompt_tokens, completion_tokens, latency_ms, case_id) VALUES "
            "(now(), 'completed', '', 'm', 'm@1', 'v1', 'x', '{}', %s, %s, 'steps', 'sc', '{}', "
            "%s, '[]', 1, 1, 1, %s) RETURNING id",
            [
                json.dumps({"differential": [{"diagnosis": f"{CANARY} MI"}]}),
                f"The {CANARY} troponin rose.",
                json.dumps([{"text": f"{CANARY} sample"}]),
                CASE_ID,
            ],
        ).fetchone()[0]
        db.execute(
            "INSERT INTO clinical_clinicianreview (created_at, decision, reason_code, "
            "reason_text, modified_assessment, source, card_uuid, hook_instance, case_id, "
            "reviewer_id, run_id) VALUES (now(), 'reject', 'x', %s, NULL, 'ui', '', '', %s, "
            "%s, %s)",
            [f"Not {CANARY}", CASE_ID, user_id, run_id],
        )


def test_the_migration_encrypts_rows_written_before_it(scratch_database: str) -> None:
    url = scratch_database
    manage(url, "migrate", "auth", "-v0")
    for app, migration in [("audit", "0003"), ("clinical", "0004"), ("reasoning", "0002")]:
        manage(url, "migrate", app, migration, "-v0")
    rows_before_encryption(url)

    manage(url, "migrate", "-v0")

    with psycopg.connect(url, autocommit=True) as db:
        stored: dict[str, Any] = {}
        for table in ("clinical_case", "reasoning_reasoningrun", "clinical_clinicianreview"):
            text = db.execute(f"SELECT t::text FROM {table} t").fetchone()[0]  # noqa: S608
            assert CANARY not in text, table
            stored[table] = text
        assert "enc1:" in stored["clinical_case"]
        facts_hash = db.execute("SELECT external_id_hash FROM audit_casefacts").fetchone()[0]
        assert facts_hash == lookup_hash(f"ED-{CANARY}")
        # The append-only triggers are on again after the migration.
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute("UPDATE reasoning_reasoningrun SET reasoning_trace = ''")
    # ...and the application reads every value back in clear.
    shown = manage(
        url,
        "shell",
        "-c",
        "import json; from clinical.models import Case; c = Case.objects.get(); "
        "r = c.runs.get(); v = c.reviews.get(); print(json.dumps([c.input, c.external_id, "
        "r.assessment, r.reasoning_trace, r.samples, v.reason_text, "
        "Case.with_external_id(c.external_id).count()]))",
    )
    case_input, external_id, assessment, trace, samples, reason, found = json.loads(
        shown.strip().splitlines()[-1]
    )
    assert case_input["chief_complaint"] == f"{CANARY} chest pain"
    assert external_id == f"ED-{CANARY}"
    assert assessment["differential"][0]["diagnosis"] == f"{CANARY} MI"
    assert trace == f"The {CANARY} troponin rose."
    assert samples == [{"text": f"{CANARY} sample"}]
    assert reason == f"Not {CANARY}"
    assert found == 1

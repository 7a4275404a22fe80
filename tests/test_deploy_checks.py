"""Django's deployment checklist passes under production settings, and fails without them."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys

import pytest

from bedside import paths

# Each test starts Django afresh in a subprocess (3 to 6 s each, about 16 s in all).
pytestmark = pytest.mark.slow

PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "bedside.hospital.internal",
    "BEDSIDE_BEHIND_TLS_PROXY": "true",
    "BEDSIDE_MASTER_KEYS": "k2026:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    "BEDSIDE_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
}


def check_deploy(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **extra}
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

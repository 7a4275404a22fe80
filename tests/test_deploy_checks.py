"""Django's deployment checklist passes under production settings, and fails without them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from clinical import paths

PRODUCTION = {
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(60),
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "bedside.hospital.internal",
    "BEDSIDE_BEHIND_TLS_PROXY": "true",
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

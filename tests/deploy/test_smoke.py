"""deploy/smoke.sh against a running Bedside: Django's live HTTP server, a real worker
process on a private queue, the machine's broker, and the fake model server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management import get_commands
from django.urls import NoReverseMatch, reverse

from bedside import roles
from bedside.accounts import services as accounts_services
from clinical.models import Case, CaseStatus
from tests.deploy.conftest import WorkerProcess
from tests.e2e.conftest import worker_database_url
from tests.factories import TEST_ACTOR
from tests.fakes import FakeModelServer

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "deploy" / "smoke.sh"


def smoke(base_url: str, key: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SMOKE), base_url, key],
        env={**os.environ, "SMOKE_TIMEOUT_S": "60", "SMOKE_POLL_S": "0.5", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def audit_verify_endpoint_exists() -> bool:
    try:
        reverse("audit-verify")
    except NoReverseMatch:
        return False
    return True


def test_smoke_passes_against_a_running_bedside(
    live_server: Any,
    fake_model: FakeModelServer,
    integration_key: accounts_services.IssuedKey,
    start_worker: Callable[..., WorkerProcess],
    queues: tuple[str, str],
) -> None:
    start_worker("smoke", ",".join(reversed(queues)), model=fake_model)
    auditor = accounts_services.api_key_issue(
        name="smoke-auditor", role=roles.AUDITOR, actor=TEST_ACTOR
    )
    manage = f"{sys.executable} {ROOT / 'manage.py'}"
    result = smoke(
        live_server.url,
        integration_key.key,
        SMOKE_AUDITOR_KEY=auditor.key,
        BEDSIDE_MANAGE=manage,
        # verify_audit must read the database this test's server writes (the test database).
        DATABASE_URL=worker_database_url(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "smoke: ready: database ok, broker ok, model_server ok" in out
    assert "smoke: completed: confidence" in out
    assert out.rstrip().endswith("smoke: all checks passed")
    (case,) = [c for c in Case.objects.all() if c.external_id.startswith("SMOKE-")]
    assert case.status == CaseStatus.COMPLETED
    assert len(fake_model.requests) == 1

    if audit_verify_endpoint_exists():
        assert "audit chain intact over HTTP" in out
    else:
        assert "audit chain over HTTP: not available on this server" in out
    if "verify_audit" in get_commands():
        assert "audit chain intact (manage.py verify_audit)" in out
    else:
        assert "manage.py verify_audit: not available in this version" in out


def test_smoke_fails_when_bedside_is_not_ready(
    live_server: Any, fake_model: FakeModelServer, integration_key: accounts_services.IssuedKey
) -> None:
    fake_model.stop()
    result = smoke(live_server.url, integration_key.key)
    assert result.returncode == 1
    assert "/readyz answered 503" in result.stderr
    assert "model_server" in result.stderr
    assert not Case.objects.exists()  # nothing was submitted


def test_smoke_fails_when_the_case_fails(
    live_server: Any,
    fake_model: FakeModelServer,
    integration_key: accounts_services.IssuedKey,
    start_worker: Callable[..., WorkerProcess],
    queues: tuple[str, str],
) -> None:
    from tests.fakes import choice, completion

    fake_model.push(completion([choice(0, "{not json")]))
    start_worker("smoke-fail", ",".join(reversed(queues)), model=fake_model)
    result = smoke(live_server.url, integration_key.key)
    assert result.returncode == 1
    assert "FAILED: case" in result.stderr and "failed:" in result.stderr

"""PostgreSQL restarts under a running web server: while it is down the API answers 503
with the reason and Retry-After (never a 500), `readyz` names the database, and once it is
back the same web process answers again, with no restart of Bedside.

Real processes: an embedded PostgreSQL of this test's own (started and stopped by
`devtools.localstack`, as `make run` does), gunicorn, the machine's broker for readiness,
and a fake model server over real HTTP.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from bedside import paths
from devtools import localstack
from tests.fakes import FakeModelServer
from tests.faults.support import free_port, spawn, terminate

MODEL = "fake-model"


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [localstack.PYTHON, *args],
        cwd=paths.PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    model = FakeModelServer(model=MODEL).start()
    env = {
        **os.environ,
        "BEDSIDE_HOME": str(tmp_path / "state"),
        "BEDSIDE_EMBEDDED_PG_PORT": str(free_port()),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "BEDSIDE_MODEL_BASE_URL": model.base_url,
        "BEDSIDE_MODEL_NAME": MODEL,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("DATABASE_URL", None)  # the embedded database of this test's own
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    run(env, "-m", "devtools.localstack", "up", "--only", "postgres")
    web = None
    try:
        # As `make run`: migrations as the database's owner, then the app role's grants.
        run(env, "-m", "devtools.localstack", "migrate")
        key = run(env, "manage.py", "issue_api_key", "--name", "faults-db", "--role",
                  "integration").strip().splitlines()[-1]  # fmt: skip
        port = free_port()
        web = spawn("db-web", localstack.web_command(bind=f"127.0.0.1:{port}"), env)
        localstack.wait_for("web", lambda: localstack.port_open("127.0.0.1", port), 60)
        yield {"env": env, "web": f"http://127.0.0.1:{port}", "key": key, "process": web}
    finally:
        if web is not None:
            terminate(web)
        run(env, "-m", "devtools.localstack", "down")
        model.stop()


def test_database_down_is_503_with_reason_then_recovers_without_a_restart(
    stack: dict[str, Any],
) -> None:
    headers = {"Authorization": f"Bearer {stack['key']}"}
    with httpx.Client(base_url=stack["web"], headers=headers, timeout=60) as client:
        assert client.get("/api/v1/cases/").status_code == 200
        assert client.get("/readyz").status_code == 200

        run(stack["env"], "-m", "devtools.localstack", "down")  # PostgreSQL stops
        down = client.get("/api/v1/cases/")
        assert down.status_code == 503, down.text[:500]
        assert "Retry-After" in down.headers
        assert "database" in down.json()["errors"][0]["msg"].lower()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "database" in ready.text.lower()
        posted = client.post("/api/v1/cases/", json={"chief_complaint": "x"})
        assert posted.status_code == 503  # never a 500, and nothing half-saved

        run(stack["env"], "-m", "devtools.localstack", "up", "--only", "postgres")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            again = client.get("/api/v1/cases/")
            if again.status_code == 200:
                break
            assert again.status_code == 503
            time.sleep(0.5)
        assert again.status_code == 200
        assert client.get("/readyz").status_code == 200
    assert stack["process"].poll() is None  # the same web process throughout

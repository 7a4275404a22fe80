"""Liveness and readiness."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from rest_framework.test import APIClient

from tests.fakes import FakeModelServer


def test_healthz_is_ok_without_login() -> None:
    response = APIClient().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency(db: None, fake_model: FakeModelServer, settings) -> None:  # type: ignore[no-untyped-def]
    ready = APIClient().get("/readyz")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["model_server"]["ok"] is True

    fake_model.stop()
    down = APIClient().get("/readyz")
    assert down.status_code == 503
    body = down.json()
    assert body["checks"]["model_server"]["ok"] is False
    assert "unreachable" in body["checks"]["model_server"]["detail"]
    assert body["checks"]["database"]["ok"] is True


def test_database_outage_is_503_with_a_reason_not_a_500(db: None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import User
    from django.db.utils import OperationalError

    from bedside import roles
    from clinical import api

    user = User.objects.create_user("dora")
    roles.grant_role(user, roles.CLINICIAN)
    client = APIClient()
    client.force_authenticate(user)

    def database_down(_user: object) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(api, "visible_cases", database_down)
    response = client.get("/api/v1/cases/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "database is unavailable" in response.json()["errors"][0]["msg"]


def test_importing_settings_writes_nothing_and_names_the_command_for_missing_keys(
    tmp_path: Path,
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SECRET_KEY", "BEDSIDE_MASTER_KEYS", "BEDSIDE_LOOKUP_KEY")
    }
    env |= {"BEDSIDE_HOME": str(tmp_path / "state"), "DJANGO_SETTINGS_MODULE": "bedside.settings"}
    script = "import django; django.setup()"
    missing = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode != 0
    assert "ImproperlyConfigured" in missing.stderr
    assert "python -m bedside.local_secrets" in missing.stderr
    assert not (tmp_path / "state").exists()

    made = subprocess.run(
        [sys.executable, "-m", "bedside.local_secrets"], env=env, capture_output=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "state").rglob("*")}
    assert {p.name for p in before} >= {"secret_key", "master_keys", "lookup_key", "static"}
    imported = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert imported.returncode == 0, imported.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "state").rglob("*")} == before

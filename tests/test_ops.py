"""Liveness and readiness."""

from __future__ import annotations

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

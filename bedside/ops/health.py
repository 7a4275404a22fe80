"""Liveness and readiness for load balancers and hospital IT."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from bedside.accounts import sso
from bedside.celery import app as celery_app
from bedside.http.addresses import came_through_proxy


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"unreachable: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises transport-specific errors; all mean "down"
        return f"unreachable: {type(exc).__name__}"
    return None


def _check_model() -> str | None:
    from reasoning.services import model_client

    return model_client().ping()


def _check_directory() -> str | None:
    from bedside.accounts.directory import directory_ping  # the optional `directory` extra

    return directory_ping()


def _check_single_sign_on() -> str | None:
    return sso.provider_problem()


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check_database(),
        "broker": _check_broker(),
        "model_server": _check_model(),
    }
    ready = all(problem is None for problem in checks.values())
    # Reported, not required: with the hospital's directory or sign-in service down,
    # Bedside still serves the EHRs' API keys, the people already signed in and the
    # break-glass administrator, so a load balancer must not take it out of service for that.
    reported: dict[str, str | None] = {}
    if sso.sso_enabled():
        reported["single_sign_on"] = _check_single_sign_on()
    if settings.BEDSIDE_LDAP_URI:
        reported["directory"] = _check_directory()
    return JsonResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {
                name: {"ok": problem is None, "detail": problem or "ok"}
                for name, problem in checks.items()
            },
            "reported": {
                name: {"ok": problem is None, "detail": problem or "ok"}
                for name, problem in reported.items()
            },
            "model": settings.BEDSIDE_MODEL_NAME,
        },
        status=200 if ready else 503,
    )


def _metrics_allowed(request: HttpRequest) -> bool:
    """The bearer token of BEDSIDE_METRICS_TOKEN, or a direct request from this host. A
    request through nginx comes from loopback too: any request through a proxy (one with
    X-Forwarded-For, Forwarded or X-Real-IP, bedside/http/addresses.py) needs the token."""
    token = settings.BEDSIDE_METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
        return True
    if came_through_proxy(request.META):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format: queue depth, latency split, model errors, confidence,
    overrides. Counts only; no patient data."""
    from bedside.ops import metrics as prometheus
    from reasoning.services import model_client

    if not _metrics_allowed(request):
        return JsonResponse(
            {"errors": [{"loc": ["header", "Authorization"], "msg": "metrics need the token"}]},
            status=403,
        )
    servers = [(s.url, s.client.ping()) for s in model_client().servers]
    return HttpResponse(prometheus.render(servers), content_type=prometheus.CONTENT_TYPE)

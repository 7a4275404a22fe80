"""The client's address behind trusted proxies (issue 17, findings 6 and 15): audit events,
throttling and ``/metrics`` read X-Forwarded-For only from a trusted proxy, from the right."""

from __future__ import annotations

from typing import Any
from typing import Any as SettingsWrapper

import pytest
from django.contrib.auth.models import User
from django.test import Client, RequestFactory

from audit.models import AuditEvent
from bedside.http.addresses import came_through_proxy, client_address

NGINX = "127.0.0.1"
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role


def meta(peer: str, forwarded_for: str | None = None) -> dict[str, str]:
    request = RequestFactory().get("/", REMOTE_ADDR=peer)
    if forwarded_for is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return dict(request.META)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded_for", "client"),
    [
        ([], NGINX, "203.0.113.9", NGINX),  # no trusted proxy: the header is ignored
        ([NGINX], NGINX, "203.0.113.9", "203.0.113.9"),
        ([NGINX], "10.1.2.3", "203.0.113.9", "10.1.2.3"),  # the peer is no proxy of ours
        # A client's own X-Forwarded-For is to the left of what nginx appended: ignored.
        ([NGINX], NGINX, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        # Two proxies of ours (a load balancer in 10.0.0.0/8, then nginx): skip both.
        ([NGINX, "10.0.0.0/8"], NGINX, "203.0.113.9, 10.0.0.5", "203.0.113.9"),
        ([NGINX], NGINX, "not-an-address", NGINX),
        ([NGINX, "::1"], "::1", "2001:db8::7", "2001:db8::7"),
        ([NGINX], NGINX, None, NGINX),
    ],
)
def test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy(
    settings: SettingsWrapper,
    trusted: list[str],
    peer: str,
    forwarded_for: str | None,
    client: str,
) -> None:
    settings.BEDSIDE_TRUSTED_PROXIES = trusted
    assert client_address(meta(peer, forwarded_for)) == client


@pytest.mark.django_db
def test_audit_events_behind_nginx_name_the_client_not_the_proxy(
    alice: User, settings: SettingsWrapper
) -> None:
    settings.BEDSIDE_TRUSTED_PROXIES = [NGINX]
    client = Client(REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.9")
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    events = AuditEvent.objects.filter(code__in=("login.failed", "login.succeeded"))
    assert sorted(events.values_list("code", "source_address")) == [
        ("login.failed", "203.0.113.9"),
        ("login.succeeded", "203.0.113.9"),
    ]


@pytest.mark.django_db
def test_throttling_behind_nginx_counts_each_client_apart(
    alice: User, settings: SettingsWrapper
) -> None:
    settings.BEDSIDE_TRUSTED_PROXIES = [NGINX]
    settings.BEDSIDE_AUTH_FAILURES_PER_MIN = 3
    stranger = Client(REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="203.0.113.9")
    for username in ("carl", "dora", "erin", "fred"):
        stranger.post("/accounts/login/", {"username": username, "password": "wrong"})
    clinician = Client(REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="10.20.30.40")
    response = clinician.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "header",
    ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"],
)
@pytest.mark.django_db
def test_metrics_refuse_any_proxied_request_without_the_token(
    header: str, settings: SettingsWrapper
) -> None:
    settings.BEDSIDE_METRICS_TOKEN = "scrape-token"
    value = "for=203.0.113.9" if header == "HTTP_FORWARDED" else "203.0.113.9"
    extra: dict[str, Any] = {header: value}
    assert Client(REMOTE_ADDR=NGINX).get("/metrics", **extra).status_code == 403


@pytest.mark.django_db
def test_metrics_from_a_trusted_proxy_naming_a_client_need_the_token(
    settings: SettingsWrapper,
) -> None:
    settings.BEDSIDE_TRUSTED_PROXIES = [NGINX]
    assert came_through_proxy(meta(NGINX, "203.0.113.9"))
    assert not came_through_proxy(meta(NGINX))
    assert Client(REMOTE_ADDR=NGINX).get("/metrics").status_code == 200  # a local scrape

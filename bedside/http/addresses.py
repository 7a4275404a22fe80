"""The client's network address, and whether a request came through a proxy.

Behind nginx every request's peer is the proxy. ``BEDSIDE_TRUSTED_PROXIES`` names the
proxies (addresses or CIDR ranges); only when the peer is one of them is
``X-Forwarded-For`` read, from the right: each hop a trusted proxy appended is skipped, and
the first address that is not a trusted proxy is the client. Anything to its left was
written by the client and proves nothing. With no trusted proxies the header is ignored.
Audit events, sign-in throttling and the ``/metrics`` check all use this one rule.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The headers a proxy uses to pass the client on; any of them marks a proxied request.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def trusted_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(settings.BEDSIDE_TRUSTED_PROXIES)))


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def client_address(meta: Mapping[str, Any]) -> str | None:
    """The client's address from a request's META (None when there is none)."""
    peer = str(meta.get("REMOTE_ADDR") or "")
    if not peer or not trusted_proxy(peer):
        return peer or None
    hops = [hop.strip() for hop in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    nearest = peer
    for hop in reversed([h for h in hops if h]):
        if not _valid(hop):
            break  # not an address: the trusted hop that passed it on is all we know
        if not trusted_proxy(hop):
            return hop
        nearest = hop
    return nearest


def came_through_proxy(meta: Mapping[str, Any]) -> bool:
    """Whether a request reached Bedside through a proxy: it carries any forwarding header
    (X-Forwarded-For, Forwarded, X-Real-IP; a proxy not named as trusted still sets one, and
    a direct caller has no reason to), or a trusted proxy named a client other than itself."""
    if any(header in meta for header in FORWARDING_HEADERS):
        return True
    return client_address(meta) != (meta.get("REMOTE_ADDR") or None)

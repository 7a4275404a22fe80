"""Fetching the public keys (JWKS) that tokens given to Bedside are signed with: the hospital
OpenID provider's (single sign-on) and the EHRs' that call CDS Hooks. One fetcher for both:
an on-premises or allow-listed host only, bounded in time and size, no redirects; and one
rule for when cached keys are fetched again."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from bedside.hosts import EndpointRefused, check_model_endpoint
from bedside.http.bounded import AnswerNotOk, AnswerTooLarge, get_bounded

MAX_BYTES = 256_000
TIMEOUT_S = 5.0
# An unknown kid fetches the JWKS again, but not more often than this: tokens with made-up
# key ids must not turn Bedside into a client hammering the key server.
REFETCH_MIN_S = 10


class JwksUnavailable(ValueError):
    """The keys cannot be had: the URL is refused, unreachable, or answers no JWKS."""


def jwks_fetch(
    url: str,
    *,
    allowed_hosts: Sequence[str],
    setting: str,
    timeout_s: float = TIMEOUT_S,
    ca_file: str = "",
) -> dict[str, Any]:
    """The JWKS at ``url``, ``{"keys": [...]}`` as published (what each key must be is the
    caller's to check). ``url`` must be on the premises or in ``allowed_hosts`` (read from
    the setting named ``setting``); ``ca_file`` replaces the default trusted CAs."""
    try:
        check_model_endpoint(url, allowed_hosts=list(allowed_hosts), setting=setting)
    except EndpointRefused as exc:
        raise JwksUnavailable(f"JWKS URL refused: {exc}") from exc
    try:
        raw = get_bounded(url, timeout_s=timeout_s, max_bytes=MAX_BYTES, ca_file=ca_file)
    except AnswerNotOk as exc:
        raise JwksUnavailable(f"JWKS URL answered HTTP {exc.status}") from exc
    except AnswerTooLarge as exc:
        raise JwksUnavailable(f"JWKS over {MAX_BYTES} bytes") from exc
    except httpx.HTTPError as exc:
        raise JwksUnavailable(f"JWKS URL unreachable: {type(exc).__name__}") from exc
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise JwksUnavailable(f"JWKS URL did not answer a JWKS: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable('JWKS URL did not answer a JWKS: no "keys" list')
    return document


def stale(*, age_s: float | None, cache_s: float) -> bool:
    """Whether keys fetched ``age_s`` seconds ago (None: never) are due for their periodic
    fetch."""
    return age_s is None or age_s > cache_s


def refetch_due(*, age_s: float | None, cache_s: float, kid_known: bool) -> bool:
    """Whether cached keys ``age_s`` seconds old (None: none fetched yet) are fetched again:
    when stale (older than ``cache_s``), or early when a token names a key id not among
    them (the key server rotated its keys), though not sooner than ``REFETCH_MIN_S`` after
    the last fetch."""
    if age_s is None or stale(age_s=age_s, cache_s=cache_s):
        return True
    return not kid_known and age_s > REFETCH_MIN_S

"""``Authorization: Bearer <key>`` for integration keys (stored as SHA-256 only)."""

from __future__ import annotations

import hmac
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from audit.actors import actor_for
from bedside.accounts.access_audit import auth_failure_record
from bedside.accounts.keys import EXPLICIT_SCOPES, LAST_USED_RESOLUTION, hash_key, split_key
from bedside.accounts.models import ApiKey
from bedside.accounts.selectors import api_key_by_prefix
from bedside.accounts.throttling import NOT_READ, source_refused, source_retry_after


class ApiKeyAuthentication(BaseAuthentication):
    """Every request looks the key up afresh (with its user's roles), so a revocation, an
    expiry or a role change holds at once."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        source = actor_for(None, request).source_address
        request_id = getattr(request, "request_id", "")
        key = _bearer_key(header)
        prefix = split_key(key) if key is not None else None
        # The key, its user's roles and this address's failures in one query; the address
        # is still judged before the key's secret is checked.
        found = api_key_by_prefix(prefix=prefix, source_address=source) if prefix else None
        failures = found.source_failures if found is not None else NOT_READ
        if source_refused(
            source_address=source, method="api_key", request_id=request_id, failures=failures
        ):
            raise Throttled(source_retry_after(), "too many failed authentications from here")
        if len(header) != 2:
            _refused(request, "malformed_header", "")
            raise AuthenticationFailed("Authorization header must be 'Bearer <api key>'")
        if key is None:
            _refused(request, "malformed_key", "")
            raise AuthenticationFailed("invalid API key")
        api_key = found.api_key if found is not None else None
        now = timezone.now()
        if api_key is None or not hmac.compare_digest(api_key.key_hash, hash_key(key)):
            _refused(request, "unknown_key", prefix or "")
            raise AuthenticationFailed("invalid or revoked API key")
        if api_key.revoked_at is not None or not api_key.user.is_active:
            _refused(request, "revoked", api_key.prefix, api_key)
            raise AuthenticationFailed("invalid or revoked API key")
        if api_key.is_expired(now):
            _refused(request, "expired", api_key.prefix, api_key)
            raise AuthenticationFailed("this API key has expired")
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            # At most one write a minute per key, not one per request on the intake path.
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def _bearer_key(header: list[bytes]) -> str | None:
    """The key of ``Bearer <key>``, or None when the header is malformed or not ASCII."""
    if len(header) != 2:
        return None
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError:
        return None


def _refused(request: Request, reason: str, prefix: str, api_key: ApiKey | None = None) -> None:
    """Audit a refused key: which key (by its public prefix) and why, never the secret."""
    auth_failure_record(
        method="api_key",
        reason=reason,
        request=request,
        claimed=prefix[:16],
        extra={"prefix": prefix[:16]},
    )


def key_allows(request: Any, scope: str) -> bool:
    """Whether the request's API key (if it came with one) carries ``scope``.

    Keys without scopes have every scope their role allows, except the explicit ones
    (``EXPLICIT_SCOPES``: break-glass), which a key holds only when it was issued with
    them; people (sessions) are governed by their role alone.
    """
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):
        return True
    if not api_key.scopes:
        return scope not in EXPLICIT_SCOPES
    return scope in api_key.scopes

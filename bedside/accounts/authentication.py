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
from bedside.accounts.throttling import source_refused, source_retry_after


class ApiKeyAuthentication(BaseAuthentication):
    """Every request looks the key up afresh, so a revocation or expiry holds at once."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        source = actor_for(None, request).source_address
        request_id = getattr(request, "request_id", "")
        if source_refused(source_address=source, method="api_key", request_id=request_id):
            raise Throttled(source_retry_after(), "too many failed authentications from here")
        if len(header) != 2:
            _refused(request, "malformed_header", "")
            raise AuthenticationFailed("Authorization header must be 'Bearer <api key>'")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            _refused(request, "malformed_key", "")
            raise AuthenticationFailed("invalid API key") from exc
        prefix = split_key(key)
        api_key = (
            ApiKey.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
        )
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

"""``Authorization: Bearer <key>`` for integration keys (stored as SHA-256 only)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from clinical.models import ApiKey

KEY_PREFIX = "bsk"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str | None:
    """Return the lookup prefix of a well-formed key (``bsk_<prefix>_<secret>``), else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            _refuse(request, "malformed header", "")
            raise AuthenticationFailed("Authorization header must be 'Bearer <api key>'")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            _refuse(request, "malformed key", "")
            raise AuthenticationFailed("invalid API key") from exc
        prefix = split_key(key)
        api_key = (
            ApiKey.objects.select_related("user").filter(prefix=prefix).first() if prefix else None
        )
        reason = ""
        if api_key is None:
            reason = "unknown key" if prefix else "malformed key"
        elif api_key.revoked_at is not None:
            reason = "revoked key"
        elif not api_key.user.is_active:
            reason = "inactive key user"
        elif not hmac.compare_digest(api_key.key_hash, hash_key(key)):
            reason = "wrong secret"
        if reason:
            _refuse(request, reason, prefix or "")
            raise AuthenticationFailed("invalid or revoked API key")
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            # At most one write a minute per key, not one per request on the intake path.
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def _refuse(request: Request, reason: str, prefix: str) -> None:
    """Every refused key writes one ``auth.failed`` event (the prefix only, never the key)."""
    from clinical.access_audit import auth_failure_record

    auth_failure_record(method="api_key", reason=reason, request=request, claimed=prefix)

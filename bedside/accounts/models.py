"""Integration keys and their request windows.

The tables keep the names the clinical app gave them: the models moved here without
copying a row (state-only migrations)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models

from bedside.vault.fields import EncryptedTextField


class ApiKey(models.Model):
    """An integration key. Only a SHA-256 of the key is stored; the key is shown once.

    Each key acts as its own service user, so cases, audit events and permissions treat
    an EHR integration like any other principal.
    """

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_key"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # What the key may do (``bedside.accounts.authentication.SCOPES``); empty means every scope of
    # its role, which is how keys issued before scopes existed keep working.
    scopes = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Requests a minute; null means the site default BEDSIDE_KEY_RATE_LIMIT_PER_MIN.
    rate_limit_per_min = models.PositiveIntegerField(null=True, blank=True)
    # Where a completed or failed case is announced (on-premises hosts only).
    callback_url = models.URLField(max_length=500, blank=True)
    # The HMAC key of the callbacks' signatures: shown once (at issue or rotation), stored
    # encrypted, so a reader of the database (or of a backup) cannot forge a callback.
    callback_secret = EncryptedTextField(blank=True, default="")

    class Meta:
        db_table = "clinical_apikey"  # made by the clinical app before accounts existed

    def __str__(self) -> str:
        return f"API key {self.name} ({self.prefix}…)"

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class RateLimitWindow(models.Model):
    """A fixed one-minute window of requests counted per integration key."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "clinical_ratelimitwindow"
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "window_start"], name="rate_limit_window_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} requests of key {self.api_key_id} from {self.window_start}"

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


class EhrUserLinkStatus(models.TextChoices):
    PENDING = "pending", "Pending: an admin attaches it to a Bedside user"
    ACTIVE = "active", "Active"
    DISABLED = "disabled", "Disabled"


class EhrUserLink(models.Model):
    """Who an EHR's user is in Bedside: a CDS Hooks ``context.userId`` (``Practitioner/123``)
    of one EHR (its JWT issuer), linked to a Bedside clinician.

    Made on first sight as a pending link with no user; an admin attaches it to the right
    person (the admin site or ``manage.py ehr_user_link``). Only an active link with an
    active user counts: then the cases that EHR user's hook calls make are that clinician's,
    and the card's link opens for them."""

    issuer = models.CharField(max_length=255)
    ehr_user_id = models.CharField("EHR user (context.userId)", max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ehr_user_links",
    )
    status = models.CharField(
        max_length=16, choices=EhrUserLinkStatus.choices, default=EhrUserLinkStatus.PENDING
    )
    first_seen_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["issuer", "ehr_user_id"], name="ehr_user_link_per_issuer"
            ),
            models.CheckConstraint(
                condition=~models.Q(status="active") | models.Q(user__isnull=False),
                name="ehr_user_link_active_has_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ehr_user_id} of {self.issuer} ({self.status})"


class EhrClient(models.Model):
    """An EHR allowed to call Bedside's CDS Hooks services: its JWT issuer and its public
    keys, given as a JWKS (``jwks``) or fetched from its JWKS URL (cached in ``jwks``).

    Registered at run time (``manage.py cds_client``, the admin site); an issuer named in
    ``BEDSIDE_CDS_HOOKS_CLIENTS`` is copied here the first time it calls (a seed)."""

    issuer = models.CharField(max_length=255, unique=True)
    jwks_url = models.URLField(max_length=500, blank=True)
    # The keys: given, or the last fetched from jwks_url.
    jwks = models.JSONField(null=True, blank=True)
    jwks_fetched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, default="command")  # command, admin, setting

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(jwks_url="") | models.Q(jwks__isnull=False),
                name="ehr_client_has_keys_or_url",
            )
        ]

    def __str__(self) -> str:
        return f"EHR {self.issuer}" + (" (disabled)" if self.disabled_at else "")


class SourceFailureWindow(models.Model):
    """Failed or refused authentications from one network address in a fixed one-minute
    window, counted before any credential is checked (bedside/accounts/throttling.py)."""

    source_address = models.GenericIPAddressField()
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source_address", "window_start"], name="failure_window_per_source"
            )
        ]

    def __str__(self) -> str:
        return f"{self.count} failures from {self.source_address} from {self.window_start}"


class SsoIdentity(models.Model):
    """A person of the hospital's identity provider, as Bedside knows them: the provider's
    issuer and its ``sub`` for that person name one Bedside user, whatever their user name
    becomes (``preferred_username`` may change; ``sub`` does not)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="sso_identities"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "single sign-on identity"
        verbose_name_plural = "single sign-on identities"
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"

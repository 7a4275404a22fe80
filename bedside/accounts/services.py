"""Writes of accounts: issuing, changing and revoking integration keys; people's logins."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, acting_as, record
from bedside import roles
from bedside.accounts.keys import KEY_PREFIX, SCOPES, hash_key
from bedside.accounts.models import ApiKey, EhrUserLink, EhrUserLinkStatus
from bedside.hosts import EndpointRefused, callback_address


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    key: str  # shown once, never stored
    callback_secret: str = ""  # shown once; stored encrypted (only with a callback URL)


def _new_callback_secret() -> str:
    # "bcs_" says what it is when it turns up in a config file or a secret scanner.
    return "bcs_" + secrets.token_urlsafe(32)


class KeyRefused(ValueError):
    """An API key setting that cannot be accepted (unknown scope, off-premises callback...)."""


def api_key_settings_check(*, scopes: list[str], callback_url: str) -> None:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise KeyRefused(f"unknown scope(s) {', '.join(unknown)}; expected {', '.join(SCOPES)}")
    if callback_url:
        try:
            callback_address(callback_url, allowed_hosts=settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS)
        except EndpointRefused as exc:
            raise KeyRefused(f"callback URL refused: {exc}") from exc


def api_key_issue(
    *,
    name: str,
    role: str,
    actor: Actor,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    rate_limit_per_min: int | None = None,
    callback_url: str = "",
) -> IssuedKey:
    if role not in roles.ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(roles.ALL_ROLES)}")
    scopes = sorted(set(scopes or []))
    api_key_settings_check(scopes=scopes, callback_url=callback_url)
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    callback_secret = _new_callback_secret() if callback_url else ""
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=f"key:{name}"[:150], password=None)
        with acting_as(actor):
            roles.grant_role(user, role)
        api_key = ApiKey.objects.create(
            name=name,
            prefix=prefix,
            key_hash=hash_key(key),
            user=user,
            scopes=scopes,
            expires_at=expires_at,
            rate_limit_per_min=rate_limit_per_min,
            callback_url=callback_url,
            callback_secret=callback_secret,
        )
        record(
            actor=actor,
            action=Action.CREATE,
            code="key.issued",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={
                "name": name,
                "role": role,
                "prefix": prefix,
                "scopes": scopes,
                "expires_at": expires_at.isoformat() if expires_at else None,
                "rate_limit_per_min": rate_limit_per_min,
                "callback": bool(callback_url),
            },
        )
    return IssuedKey(api_key=api_key, key=key, callback_secret=callback_secret)


def api_key_callback_secret_rotate(*, api_key: ApiKey, actor: Actor) -> str:
    """A new callback secret for the key (returned to be shown once); the old one stops
    signing at once. Audited without the secret."""
    secret = _new_callback_secret()
    with transaction.atomic():
        api_key.callback_secret = secret
        api_key.save(update_fields=["callback_secret"])
        record(
            actor=actor,
            action=Action.UPDATE,
            code="key.callback_secret_rotated",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={"name": api_key.name, "prefix": api_key.prefix},
        )
    return secret


def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> bool:
    """Revoke a key at once (the next request with it is refused). False if it already was."""
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            record(
                actor=actor,
                action=Action.UPDATE,
                code="key.revoked",
                object_type="api_key",
                object_id=str(api_key.pk),
                details={"name": api_key.name, "prefix": api_key.prefix},
            )
    api_key.refresh_from_db()
    return bool(revoked)


def api_key_update(*, api_key: ApiKey, actor: Actor, changed: list[str]) -> ApiKey:
    """Save settings changed on a key (the admin page), audited with the field names."""
    api_key_settings_check(scopes=list(api_key.scopes or []), callback_url=api_key.callback_url)
    with transaction.atomic():
        api_key.save()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="key.changed",
            object_type="api_key",
            object_id=str(api_key.pk),
            details={"name": api_key.name, "prefix": api_key.prefix, "fields": sorted(changed)},
        )
    return api_key


def user_ensure(*, username: str, password: str, role: str, actor: Actor) -> Any:
    """Create or reset a person's login with one role (used for the demo accounts)."""
    user_model = get_user_model()
    with transaction.atomic():
        user, _ = user_model.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == roles.ADMIN
        user.is_superuser = role == roles.ADMIN
        # Privilege changes (the role's group, the admin flags) are recorded as
        # `role.changed` by bedside.accounts.access_audit, with this actor.
        with acting_as(actor):
            user.save()
            if not user.groups.filter(name=role).exists():
                roles.grant_role(user, role)
    return user


# --- EHR users (CDS Hooks context.userId) linked to Bedside clinicians ---------------------


class LinkRefused(ValueError):
    """A link that cannot be made (the user is not an active clinician...)."""


def ehr_user_link_seen(*, issuer: str, ehr_user_id: str, actor: Actor) -> EhrUserLink:
    """The link for this EHR user, made pending (no Bedside user) the first time it is seen."""
    issuer, ehr_user_id = issuer[:255], ehr_user_id[:255]
    link = EhrUserLink.objects.filter(issuer=issuer, ehr_user_id=ehr_user_id).first()
    if link is not None:
        return link
    with transaction.atomic():
        link, created = EhrUserLink.objects.get_or_create(issuer=issuer, ehr_user_id=ehr_user_id)
        if created:
            record(
                actor=actor,
                action=Action.CREATE,
                code="ehr_user_link.pending",
                object_type="ehr_user_link",
                object_id=str(link.pk),
                details={"issuer": issuer, "ehr_user": ehr_user_id},
            )
    return link


def ehr_user_link_attach(*, link: EhrUserLink, user: Any, actor: Actor) -> EhrUserLink:
    """Attach an EHR user to a Bedside clinician (and make the link active)."""
    if not user.is_active or roles.CLINICIAN not in roles.roles_of(user):
        raise LinkRefused(f"{user.username} is not an active clinician")
    with transaction.atomic():
        link.user = user
        link.status = EhrUserLinkStatus.ACTIVE
        link.save()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="ehr_user_link.attached",
            object_type="ehr_user_link",
            object_id=str(link.pk),
            details={"issuer": link.issuer, "ehr_user": link.ehr_user_id, "user": user.pk},
        )
    return link


def ehr_user_link_disable(*, link: EhrUserLink, actor: Actor) -> EhrUserLink:
    """Stop using a link: that EHR user's calls are again the EHR's own."""
    with transaction.atomic():
        link.status = EhrUserLinkStatus.DISABLED
        link.save()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="ehr_user_link.disabled",
            object_type="ehr_user_link",
            object_id=str(link.pk),
            details={"issuer": link.issuer, "ehr_user": link.ehr_user_id},
        )
    return link

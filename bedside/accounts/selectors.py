"""Reads of accounts used in more than one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, Value

from bedside import roles
from bedside.accounts.models import ApiKey, EhrUserLink, EhrUserLinkStatus
from bedside.accounts.throttling import source_failures_now


@dataclass(frozen=True)
class KeyLookup:
    """An API key found by its prefix, read in one query with what every request needs
    next: its user, the user's roles (remembered on the user), and the failed
    authentications of the request's address this minute (None: none)."""

    api_key: ApiKey
    source_failures: int | None


def api_key_by_prefix(*, prefix: str, source_address: str | None) -> KeyLookup | None:
    """The key with this public prefix (not yet checked against the secret), or None.

    Read afresh on every request, so a revocation, an expiry or a role change holds at
    once; one query instead of three (key, roles, the address's failures)."""
    found = (
        ApiKey.objects.select_related("user")
        .filter(prefix=prefix)
        .annotate(
            bedside_role_names=ArraySubquery(
                Group.objects.filter(user=OuterRef("user_id")).values("name")
            ),
            bedside_source_failures=source_failures_now(source_address)
            if source_address
            else Value(None),
        )
        .first()
    )
    if found is None:
        return None
    roles.remember_roles(found.user, found.bedside_role_names)
    return KeyLookup(api_key=found, source_failures=found.bedside_source_failures)


def linked_clinician(*, issuer: str, ehr_user_id: str) -> Any | None:
    """The Bedside clinician an EHR user is linked to, or None (no link, pending, disabled,
    or the person can no longer sign in or is no longer a clinician)."""
    link = (
        EhrUserLink.objects.select_related("user")
        .filter(issuer=issuer[:255], ehr_user_id=ehr_user_id[:255])
        .first()
    )
    if link is None or link.status != EhrUserLinkStatus.ACTIVE or link.user is None:
        return None
    user = link.user
    if not user.is_active or roles.CLINICIAN not in roles.roles_of(user):
        return None
    return user

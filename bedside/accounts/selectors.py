"""Reads of accounts used in more than one place."""

from __future__ import annotations

from typing import Any

from bedside import roles
from bedside.accounts.models import EhrUserLink, EhrUserLinkStatus


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

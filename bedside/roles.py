"""The four roles of DESIGN.md, held as Django groups, and the checks views use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group

CLINICIAN = "clinician"
AUDITOR = "auditor"
INTEGRATION = "integration"
ADMIN = "admin"
ALL_ROLES = (CLINICIAN, AUDITOR, INTEGRATION, ADMIN)

SUBMITTERS = {CLINICIAN, INTEGRATION}
READERS_OF_ALL_CASES = {AUDITOR, ADMIN}
CASE_READERS = SUBMITTERS | READERS_OF_ALL_CASES


def roles_of(user: Any) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_bedside_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(ADMIN)
        user._bedside_roles = cached
    return set(cached)


def remember_roles(user: Any, group_names: Iterable[str]) -> None:
    """The user's roles as read with the user (its groups' names, e.g. in the API key's own
    lookup): ``roles_of`` then asks the database nothing more for this request."""
    cached = set(group_names)
    if user.is_superuser:
        cached.add(ADMIN)
    user._bedside_roles = cached


def primary_role(user: Any) -> str:
    roles = roles_of(user)
    for role in (ADMIN, AUDITOR, CLINICIAN, INTEGRATION):
        if role in roles:
            return role
    return "none"


def grant_role(user: Any, role: str) -> None:
    if role not in ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ALL_ROLES)}")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if hasattr(user, "_bedside_roles"):
        del user._bedside_roles

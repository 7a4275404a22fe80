"""What every way of signing in shares: the method a person signed in by (a local password,
the hospital's directory, its single sign-on), their roles taken from the hospital's groups
at each sign-in, and the events that record both.

A sign-in backend names its method with a ``sign_in_method`` class attribute; the
``login.succeeded`` event and the session carry it, so the auditors' screens can say how
each person signed in. Roles read from a directory or an identity provider replace the
person's roles wholesale at every sign-in (``user_roles_replace``), in one ``role.changed``
event with the old and the new roles, so a person moved out of a group loses the role the
next time they sign in.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils.module_loading import import_string

from audit.models import Action
from audit.services import Actor, record
from bedside import roles
from bedside.accounts.access_audit import roles_recorded_here
from bedside.accounts.models import ApiKey, SsoIdentity


class SignInMethod(StrEnum):
    LOCAL = "local"
    DIRECTORY = "directory"
    SSO = "sso"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    SignInMethod.LOCAL: "local password",
    SignInMethod.DIRECTORY: "hospital directory",
    SignInMethod.SSO: "single sign-on",
}
# Where the session keeps how its person signed in.
SESSION_METHOD_KEY = "bedside_sign_in_method"


def method_label(value: str | None) -> str:
    """The auditor's words for a recorded method; events from before methods were recorded
    were all local passwords."""
    try:
        return SignInMethod(value or SignInMethod.LOCAL).label
    except ValueError:
        return value or SignInMethod.LOCAL.label


def sign_in_method_of(user: Any) -> SignInMethod:
    """How this user was just authenticated: the ``sign_in_method`` of the backend that
    ``authenticate()`` noted on it (local when none is noted, as for ``force_login``)."""
    path = getattr(user, "backend", None)
    if not path:
        return SignInMethod.LOCAL
    try:
        backend = import_string(path)
    except ImportError:
        return SignInMethod.LOCAL
    return SignInMethod(getattr(backend, "sign_in_method", SignInMethod.LOCAL))


def account_made_by(user: Any) -> SignInMethod:
    """Which way of signing in this account belongs to: single sign-on when a person of the
    identity provider is linked to it (``SsoIdentity``, made at their first sign-in); the
    directory when it has no usable local password (a directory sign-in makes the account
    so, or takes a local one over so); else a local account. Both of the first have no
    usable password: only the identity row tells them apart. An integration key's service
    user has no usable password either, and is neither: it is Bedside's own account, and no
    password signs it in."""
    if SsoIdentity.objects.filter(user=user).exists():
        return SignInMethod.SSO
    if ApiKey.objects.filter(user=user).exists():
        return SignInMethod.LOCAL
    if not user.has_usable_password():
        return SignInMethod.DIRECTORY
    return SignInMethod.LOCAL


def parse_role_groups(text: str, *, setting: str) -> list[tuple[str, str]]:
    """``role=group`` pairs, separated by ``;`` or new lines, in a setting such as
    ``BEDSIDE_LDAP_ROLE_GROUPS="clinician=cn=ed-physicians,ou=groups,dc=hospital,dc=local"``.
    A group is an LDAP DN or an identity provider's group or role name; a role may be
    given by several groups. An unknown role stops the start with the setting's name."""
    pairs = []
    for entry in text.replace("\n", ";").split(";"):
        entry = entry.strip()
        if not entry:
            continue
        role, sep, group = entry.partition("=")
        role, group = role.strip().lower(), group.strip()
        if not sep or not group:
            raise ImproperlyConfigured(f"{setting}: {entry!r} is not role=group")
        if role not in roles.ALL_ROLES:
            raise ImproperlyConfigured(
                f"{setting}: unknown role {role!r}; expected one of {', '.join(roles.ALL_ROLES)}"
            )
        pairs.append((role, group))
    return pairs


def roles_from_groups(groups: Iterable[str], mapping: list[tuple[str, str]]) -> set[str]:
    """The roles these groups give; group names compare without case (LDAP DNs do)."""
    held = {_normal(group) for group in groups}
    return {role for role, group in mapping if _normal(group) in held}


def _normal(group: str) -> str:
    return ",".join(part.strip() for part in group.strip().lower().split(","))


def user_roles_replace(
    *, user: Any, new_roles: set[str], method: SignInMethod, actor: Actor
) -> bool:
    """Make the user's roles exactly ``new_roles``, as the hospital's groups gave them at
    this sign-in. One ``role.changed`` event with the old and new roles when they differ;
    returns whether they did."""
    unknown = new_roles - set(roles.ALL_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    with transaction.atomic():
        old_roles = set(user.groups.filter(name__in=roles.ALL_ROLES).values_list("name", flat=True))
        if old_roles == new_roles:
            return False
        granted, revoked = sorted(new_roles - old_roles), sorted(old_roles - new_roles)
        with roles_recorded_here():
            if revoked:
                user.groups.remove(*Group.objects.filter(name__in=revoked))
            for role in granted:
                group, _ = Group.objects.get_or_create(name=role)
                user.groups.add(group)
        if hasattr(user, "_bedside_roles"):
            del user._bedside_roles
        record(
            actor=actor,
            action=Action.UPDATE,
            code="role.changed",
            object_type="user",
            object_id=str(user.pk),
            details={
                "user": user.get_username(),
                "old": sorted(old_roles),
                "new": sorted(new_roles),
                "granted": granted,
                "revoked": revoked,
                "source": str(method),
            },
        )
    return True


def _on_logged_in(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and user is not None:
        session[SESSION_METHOD_KEY] = str(sign_in_method_of(user))


def connect() -> None:
    user_logged_in.connect(_on_logged_in, dispatch_uid="bedside_sign_in_method")

"""Audit events for access itself: failed sign-ins and privilege changes.

They are written from Django's signals, because sign-in failures and group changes also
happen outside our services (the login form, the admin site, ``createsuperuser``). The
receivers are thin; the acting person comes from ``acting_as`` or the current request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save
from django.http import HttpRequest

from audit.actors import actor_for
from audit.middleware import current_request
from audit.models import Action, Outcome
from audit.services import SYSTEM, Actor, current_actor, record
from bedside.accounts.throttling import source_failure_count

PRIVILEGE_FLAGS = ("is_superuser", "is_staff", "is_active")
# Set when the sign-in backend has already written the event of a refused attempt, so the
# ``user_login_failed`` signal Django sends next does not write a second one.
_attempt_recorded: ContextVar[bool] = ContextVar("bedside_sign_in_recorded", default=False)
# Set while a service changes a person's groups and records the change itself, in one event
# (``identity.user_roles_replace``), so the group signals do not write one event per group.
_roles_recorded: ContextVar[bool] = ContextVar("bedside_roles_recorded", default=False)
# Person sign-in methods: their failures are ``login.failed``; a key's or a token's are
# ``auth.failed``.
PERSON_METHODS = ("password", "local", "directory", "sso")


@contextmanager
def roles_recorded_here() -> Iterator[None]:
    token = _roles_recorded.set(True)
    try:
        yield
    finally:
        _roles_recorded.reset(token)


def sign_in_attempt_recorded() -> None:
    """The caller wrote this attempt's event; the coming ``user_login_failed`` is a repeat."""
    _attempt_recorded.set(True)


def signal_actor() -> Actor:
    explicit = current_actor()
    if explicit is not None:
        return explicit
    request = current_request()
    if request is None:
        return SYSTEM
    user = getattr(request, "user", None)
    return actor_for(user if user is not None and user.is_authenticated else None, request)


def auth_failure_record(
    *,
    method: str,
    reason: str,
    request: HttpRequest | None,
    claimed: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """One ``auth.failed`` event, counted against its source address's failures this
    minute. ``claimed`` is the user name or key prefix presented (never a password or a key)."""
    actor = actor_for(None, request)
    if actor.source_address:
        source_failure_count(actor.source_address)
    record(
        actor=actor,
        action=Action.EXECUTE,
        code="login.failed" if method in PERSON_METHODS else "auth.failed",
        outcome=Outcome.FAILURE,
        object_type="user" if method in PERSON_METHODS else "api_key",
        object_id=claimed[:64],
        details={"method": method, "reason": reason, **(extra or {})},
    )


def privilege_change_record(
    *, user: Any, granted: list[str], revoked: list[str], roles_changed: bool = False
) -> None:
    """One ``role.changed``: what was granted and revoked (roles, or the admin flags), and
    for roles the person's roles before and after, as an auditor compares them."""
    if not granted and not revoked:
        return
    details: dict[str, Any] = {"user": user.get_username(), "granted": granted, "revoked": revoked}
    if roles_changed:
        now = set(user.groups.values_list("name", flat=True))
        details["old"] = sorted((now - set(granted)) | set(revoked))
        details["new"] = sorted(now)
    record(
        actor=signal_actor(),
        action=Action.UPDATE,
        code="role.changed",
        object_type="user",
        object_id=str(user.pk),
        details=details,
    )


def session_ended_record(
    *, user: Any, reason: str, request: HttpRequest | None = None, method: str | None = None
) -> None:
    """``session.ended``: a person's session is over (signed out, or ended because their
    directory account was disabled). ``method`` is how that session was signed in to."""
    details: dict[str, Any] = {"user": user.get_username(), "reason": reason}
    if method:
        details["method"] = method
    record(
        actor=actor_for(user, request) if request is not None else signal_actor(),
        action=Action.EXECUTE,
        code="session.ended",
        object_type="user",
        object_id=str(user.pk),
        details=details,
    )


# --- receivers ---------------------------------------------------------------------------


def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any
) -> None:
    if _attempt_recorded.get():
        _attempt_recorded.set(False)
        return  # SignInBackend (bedside/accounts/sign_in.py) wrote it, inside its lock
    auth_failure_record(
        method="local",
        reason="bad credentials",
        request=request,
        claimed=str(credentials.get("username", "")),
    )


def _on_logged_out(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    if user is None or not getattr(user, "is_authenticated", False):
        return  # signing out with no session: nothing ended
    session = getattr(request, "session", None)
    method = session.get("bedside_sign_in_method") if session is not None else None
    session_ended_record(user=user, reason="signed out", request=request, method=method)


def _on_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **_: Any
) -> None:
    user_model = get_user_model()
    if _roles_recorded.get():
        return
    if action == "pre_clear":
        # Remember what is about to go: post_clear no longer knows.
        if reverse:
            instance._bedside_cleared = list(instance.user_set.values_list("pk", flat=True))
        else:
            instance._bedside_cleared = list(instance.groups.values_list("name", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if action == "post_clear":
        cleared = getattr(instance, "_bedside_cleared", [])
        if reverse:
            for user in user_model.objects.filter(pk__in=cleared):
                privilege_change_record(
                    user=user, granted=[], revoked=[instance.name], roles_changed=True
                )
        else:
            privilege_change_record(
                user=instance, granted=[], revoked=sorted(cleared), roles_changed=True
            )
        return

    def changed(user: Any, names: list[str]) -> None:
        if action == "post_add":
            privilege_change_record(user=user, granted=names, revoked=[], roles_changed=True)
        else:
            privilege_change_record(user=user, granted=[], revoked=names, roles_changed=True)

    if reverse:  # group.user_set.add(...): one event per user
        for user in user_model.objects.filter(pk__in=pk_set or ()):
            changed(user, [instance.name])
    else:
        changed(
            instance,
            sorted(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True)),
        )


def _flag_changes(old: dict[str, bool], user: Any) -> tuple[list[str], list[str]]:
    granted = [f for f in PRIVILEGE_FLAGS if getattr(user, f) and not old.get(f, False)]
    revoked = [f for f in PRIVILEGE_FLAGS if not getattr(user, f) and old.get(f, False)]
    return granted, revoked


def _before_user_saved(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if update_fields is not None and not set(update_fields) & set(PRIVILEGE_FLAGS):
        return  # e.g. last_login on every sign-in: no privilege can change
    old = None
    if instance.pk is not None:
        old = sender.objects.filter(pk=instance.pk).values(*PRIVILEGE_FLAGS).first()
    # A new user starts as an active user with no privileges.
    instance._bedside_flags = old or {"is_superuser": False, "is_staff": False, "is_active": True}


def _after_user_saved(sender: Any, instance: Any, **_: Any) -> None:
    old = getattr(instance, "_bedside_flags", None)
    if old is None:
        return
    del instance._bedside_flags
    granted, revoked = _flag_changes(old, instance)
    privilege_change_record(user=instance, granted=granted, revoked=revoked)


def _before_password_saved(sender: Any, instance: Any, update_fields: Any = None, **_: Any) -> None:
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._bedside_password_changed = old is not None and old != instance.password


def _after_password_saved(sender: Any, instance: Any, **_: Any) -> None:
    if not getattr(instance, "_bedside_password_changed", False):
        return
    del instance._bedside_password_changed
    # Who changed whose password; never the password or its hash.
    record(
        actor=signal_actor(),
        action=Action.UPDATE,
        code="password.changed",
        object_type="user",
        object_id=str(instance.pk),
        details={"user": instance.get_username(), "usable": instance.has_usable_password()},
    )


def _members(group: Any) -> list[str]:
    return sorted(group.user_set.values_list(get_user_model().USERNAME_FIELD, flat=True))


def _before_group_saved(sender: Any, instance: Any, **_: Any) -> None:
    if instance.pk is not None:
        old = sender.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
        instance._bedside_old_name = old


def _after_group_saved(sender: Any, instance: Any, **_: Any) -> None:
    """A role is a group's name: renaming the group takes the role from every member.
    (A new group is no change to anyone's rights; the admin site audits its creation.)"""
    old = getattr(instance, "_bedside_old_name", None)
    if old is None:
        return
    del instance._bedside_old_name
    if old == instance.name:
        return
    record(
        actor=signal_actor(),
        action=Action.UPDATE,
        code="role.group_renamed",
        object_type="group",
        object_id=str(instance.pk),
        details={"old": old, "new": instance.name, "members": _members(instance)},
    )


def _before_group_deleted(sender: Any, instance: Any, **_: Any) -> None:
    # Deleting a group removes its members' role without a m2m_changed signal: name them.
    record(
        actor=signal_actor(),
        action=Action.DELETE,
        code="role.group_deleted",
        object_type="group",
        object_id=str(instance.pk),
        details={"name": instance.name, "members": _members(instance)},
    )


def connect() -> None:
    user_model = get_user_model()
    user_login_failed.connect(_on_login_failed, dispatch_uid="bedside_auth_failed")
    user_logged_out.connect(_on_logged_out, dispatch_uid="bedside_session_ended")
    m2m_changed.connect(
        _on_groups_changed, sender=user_model.groups.through, dispatch_uid="bedside_role_changed"
    )
    pre_save.connect(_before_user_saved, sender=user_model, dispatch_uid="bedside_flags_before")
    post_save.connect(_after_user_saved, sender=user_model, dispatch_uid="bedside_flags_after")
    pre_save.connect(
        _before_password_saved, sender=user_model, dispatch_uid="bedside_password_before"
    )
    post_save.connect(
        _after_password_saved, sender=user_model, dispatch_uid="bedside_password_after"
    )
    pre_save.connect(_before_group_saved, sender=Group, dispatch_uid="bedside_group_before")
    post_save.connect(_after_group_saved, sender=Group, dispatch_uid="bedside_group_after")
    pre_delete.connect(_before_group_deleted, sender=Group, dispatch_uid="bedside_group_deleted")

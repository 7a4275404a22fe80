"""Reads of accounts used in more than one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import Group, User
from django.db import connection
from django.db.models import Model

from bedside import roles
from bedside.accounts.models import ApiKey, EhrUserLink, EhrUserLinkStatus, SourceFailureWindow
from bedside.accounts.throttling import failure_window_start

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class KeyLookup:
    """An API key found by its prefix, read in one query with what every request needs
    next: its user, the user's roles (remembered on the user), and the failed
    authentications of the request's address this minute (None: none)."""

    api_key: ApiKey
    source_failures: int | None


# The key's columns but the callback secret (deferred: read, and decrypted, only where a
# callback is signed), and its user's.
_KEY_FIELDS = [f for f in ApiKey._meta.concrete_fields if f.attname != "callback_secret"]
_USER_FIELDS = list(User._meta.concrete_fields)
_USER_GROUPS = User.groups.through._meta.db_table
# Table and column names are Django's own; every value is a parameter. Written out rather
# than built by the ORM on each request: compiling the same annotated query cost about
# 5 ms of CPU per request on the 2-core machine, a third of an intake POST (issue 20).
_COLUMNS = ", ".join(
    [f'k."{f.column}"' for f in _KEY_FIELDS] + [f'u."{f.column}"' for f in _USER_FIELDS]
)
_KEY_SQL = (
    f'SELECT {_COLUMNS}, ARRAY(SELECT g."name" FROM "{Group._meta.db_table}" g'  # noqa: S608
    f' JOIN "{_USER_GROUPS}" ug ON ug."group_id" = g."id" WHERE ug."user_id" = k."user_id")'
    f', (SELECT w."count" FROM "{SourceFailureWindow._meta.db_table}" w'
    ' WHERE w."source_address" = %s AND w."window_start" = %s)'
    f' FROM "{ApiKey._meta.db_table}" k JOIN "{User._meta.db_table}" u ON u."id" = k."user_id"'
    ' WHERE k."prefix" = %s'
)


def api_key_by_prefix(*, prefix: str, source_address: str | None) -> KeyLookup | None:
    """The key with this public prefix (not yet checked against the secret), or None.

    Read afresh on every request, so a revocation, an expiry or a role change holds at
    once; one query instead of three (key, roles, the address's failures)."""
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [source_address, failure_window_start(), prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key_end = len(_KEY_FIELDS)
    user_end = key_end + len(_USER_FIELDS)
    api_key = _loaded(ApiKey, _KEY_FIELDS, row[:key_end])
    api_key.user = _loaded(User, _USER_FIELDS, row[key_end:user_end])
    roles.remember_roles(api_key.user, row[user_end])
    return KeyLookup(api_key=api_key, source_failures=row[user_end + 1])


def _loaded(model: type[M], fields: list[Any], values: tuple[Any, ...]) -> M:
    """A model instance from raw column values, converted as the ORM converts them."""
    converted = [
        f.from_db_value(value, None, connection) if hasattr(f, "from_db_value") else value
        for f, value in zip(fields, values, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


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

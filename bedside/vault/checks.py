"""System checks of Bedside's own settings; ``check --deploy`` runs the deploy-tagged ones."""

from __future__ import annotations

import os
import secrets
from typing import Any

import psycopg
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connection


@register(Tags.security, deploy=True)
def data_keys_from_environment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Patient data must not be encrypted under keys that sit on disk beside the database."""
    if settings.BEDSIDE_DATA_KEYS_FROM_ENVIRONMENT:
        return []
    return [
        Warning(
            "BEDSIDE_MASTER_KEYS and BEDSIDE_LOOKUP_KEY are not both set: patient data is "
            "encrypted under keys generated into the local state folder.",
            hint="Set both from the hospital's secret store (manage.py new_master_key makes "
            "a master key; deploy/README.md has the rotation runbook).",
            id="bedside.W001",
        )
    ]


@register(Tags.security, deploy=True)
def audit_checkpoint_key_from_environment(
    app_configs: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """A checkpoint key beside the database lets whoever rebuilds the chain re-sign too."""
    if settings.BEDSIDE_AUDIT_CHECKPOINT_KEY_FROM_ENVIRONMENT:
        return []
    return [
        Warning(
            "BEDSIDE_AUDIT_CHECKPOINT_KEY is not set: audit checkpoints are signed with a key "
            "generated into the local state folder.",
            hint="Set it from the hospital's secret store, out of the database "
            "administrators' reach.",
            id="bedside.W002",
        )
    ]


@register(Tags.security, deploy=True)
def database_login_is_locked(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The app's database login must be neither a superuser (it could switch the append-only
    triggers off and rebuild the audit chain) nor one the server lets in without checking
    its password (any local user could then be it)."""
    user = connection.settings_dict.get("USER") or "(the OS user's name)"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cursor.fetchone()
    except DatabaseError as exc:
        return [
            Error(
                f"DATABASE_URL could not be checked: the database refused or did not answer "
                f"({exc.__class__.__name__}).",
                hint="Run check --deploy where the application's database answers.",
                id="bedside.E001",
            )
        ]
    problems: list[CheckMessage] = []
    if row is None or row[0]:
        problems.append(
            Error(
                f"DATABASE_URL logs in as {user}, a superuser: it can switch off the audit "
                "trail's append-only triggers and rebuild its hash chain.",
                hint="Connect as a role with deploy/postgres/app_role.sql's grants; run "
                "migrations as the database's owner.",
                id="bedside.E002",
            )
        )
    params = connection.get_connection_params()
    host = str(params.get("host") or "")
    if host and not host.startswith("/"):
        # Over TCP, a login with a wrong password that still gets in is one the server does
        # not check (trust). No client certificate is offered, so certificate logins fail
        # here as they should. Unix sockets are left out: there peer authentication also
        # lets a login in without a password, and is sound.
        probe = {
            **{k: v for k, v in params.items() if k not in ("sslcert", "sslkey", "sslpassword")},
            "password": secrets.token_urlsafe(24),
            "passfile": os.devnull,
            "connect_timeout": 10,
        }
        try:
            psycopg.connect(**probe).close()
        except psycopg.Error:
            pass
        else:
            problems.append(
                Error(
                    f"The database lets {user} in without checking the password (trust "
                    f"authentication for {host}): any local user can log in as it.",
                    hint="Use scram-sha-256 for this login in pg_hba.conf.",
                    id="bedside.E003",
                )
            )
    return problems

"""Where Bedside keeps its local state (embedded database, broker, model, logs).

Plain Python with no Django import, so the local stack launcher can use it before
Django is configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def state_dir() -> Path:
    """The folder for local state: ``BEDSIDE_HOME`` or ``.bedside/`` in the checkout."""
    return Path(os.environ.get("BEDSIDE_HOME") or PROJECT_ROOT / ".bedside").resolve()


EMBEDDED_PG_PORT_DEFAULT = 54329
EMBEDDED_BROKER_PORT_DEFAULT = 6399
LOCAL_MODEL_PORT_DEFAULT = 8011
LOCAL_MODEL_NAME = "smollm2-135m-instruct"


def embedded_pg_port() -> int:
    return int(os.environ.get("BEDSIDE_EMBEDDED_PG_PORT", EMBEDDED_PG_PORT_DEFAULT))


def embedded_broker_port() -> int:
    return int(os.environ.get("BEDSIDE_EMBEDDED_BROKER_PORT", EMBEDDED_BROKER_PORT_DEFAULT))


# The embedded PostgreSQL's three logins, each with a generated password in the state folder
# (made by bedside.local_secrets, mode 0600): the superuser only provisions the cluster; the
# owner owns the database and runs migrations (and the test session, which creates test
# databases); the app role is what the web server and workers use, with the rights of
# deploy/postgres/app_role.sql.
EMBEDDED_SUPERUSER = "postgres"
EMBEDDED_OWNER = "bedside_owner"
EMBEDDED_APP_ROLE = "bedside_app"
EMBEDDED_DATABASE = "bedside"


def embedded_password_file(role: str) -> Path:
    return state_dir() / f"pg_{role}_password"


def embedded_password(role: str) -> str:
    """The role's generated password, or "" before `python -m bedside.local_secrets` ran."""
    try:
        return embedded_password_file(role).read_text().strip()
    except FileNotFoundError:
        return ""


def embedded_database_url(role: str, database: str = EMBEDDED_DATABASE) -> str:
    password = embedded_password(role)
    secret = f":{quote(password, safe='')}" if password else ""
    return f"postgresql://{role}{secret}@127.0.0.1:{embedded_pg_port()}/{database}"


def default_database_url() -> str:
    """What the web server and workers use when DATABASE_URL is unset: the app role."""
    return embedded_database_url(EMBEDDED_APP_ROLE)


def owner_database_url() -> str:
    """The embedded database's owner: migrations, grants, test databases, backups."""
    return embedded_database_url(EMBEDDED_OWNER)


def default_broker_url() -> str:
    return f"redis://127.0.0.1:{embedded_broker_port()}/0"


def default_model_base_url() -> str:
    return f"http://127.0.0.1:{LOCAL_MODEL_PORT_DEFAULT}/v1"

"""Where Bedside keeps its local state (embedded database, broker, model, logs).

Plain Python with no Django import, so the local stack launcher can use it before
Django is configured.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO
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


# --- Rights on the state folder ------------------------------------------------------------
# It holds the local keys, the logs (request ids, paths, the model server's output) and the
# broker's append-only file (queued cases): its owner's only, folders 0700 and files 0600.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
# Under a root shell the embedded PostgreSQL runs as its own system user and must reach its
# log file under logs/: that folder may then be crossed, not listed (0711); its files stay 0600.
TRAVERSABLE_FOLDER = 0o711


def state_folder_mode(directory: Path | None = None) -> int:
    """The state folder's and logs/'s rights: 0700, or 0711 where the embedded PostgreSQL
    runs as its own user (a root shell) and must cross them: when it is the database
    (no DATABASE_URL) or already has its data folder here. The second matters inside
    ``localstack exec``, which sets DATABASE_URL for its children: a 0700 state folder
    there locks the running PostgreSQL out of its own data (it stops at its next checkpoint)."""
    if os.geteuid() != 0:
        return PRIVATE_FOLDER
    folder = directory or state_dir()
    embedded_here = not os.environ.get("DATABASE_URL") or (folder / "pgdata").exists()
    return TRAVERSABLE_FOLDER if embedded_here else PRIVATE_FOLDER


def private_folder(path: Path, mode: int = PRIVATE_FOLDER) -> Path:
    """``path``, made if missing, with ``mode`` (also when it was made before, with looser
    rights, or through a umask)."""
    path.mkdir(parents=True, exist_ok=True, mode=mode)
    path.chmod(mode)
    return path


def private_files(folder: Path) -> None:
    """Every file and folder under ``folder`` its owner's only (files 0600, folders 0700)."""
    for entry in folder.rglob("*"):
        if entry.is_symlink():
            continue
        entry.chmod(PRIVATE_FOLDER if entry.is_dir() else PRIVATE_FILE)


def private_log(path: Path) -> BinaryIO:
    """``path`` opened for appending, made 0600 (also a log made before with looser rights)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "ab")

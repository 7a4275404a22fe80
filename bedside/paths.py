"""Where Bedside keeps its local state (embedded database, broker, model, logs).

Plain Python with no Django import, so the local stack launcher can use it before
Django is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

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


def default_database_url() -> str:
    return f"postgresql://postgres@127.0.0.1:{embedded_pg_port()}/bedside"


def default_broker_url() -> str:
    return f"redis://127.0.0.1:{embedded_broker_port()}/0"


def default_model_base_url() -> str:
    return f"http://127.0.0.1:{LOCAL_MODEL_PORT_DEFAULT}/v1"

"""Make the keys a single-machine install keeps in its state folder (``BEDSIDE_HOME`` or
``.bedside/``): ``python -m bedside.local_secrets``.

Settings only read these files (an import writes nothing); this command, the local stack
(devtools/localstack.py) and the test session make them. Production sets
``DJANGO_SECRET_KEY``, ``BEDSIDE_MASTER_KEYS``, ``BEDSIDE_LOOKUP_KEY`` and
``BEDSIDE_AUDIT_CHECKPOINT_KEY`` instead.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from bedside import paths
from bedside.vault import keyring

COMMAND = "python -m bedside.local_secrets"


def ensure(state_dir: Path | None = None) -> list[Path]:
    """Create whichever local key files are missing (each exclusively, mode 0600, so
    processes starting together agree on one key), in a state folder only its owner may
    open (0700; see ``paths.state_folder_mode``); returns the files made."""
    directory = state_dir or paths.state_dir()
    directory = paths.private_folder(directory, paths.state_folder_mode(directory))
    wanted = {
        "secret_key": lambda: secrets.token_urlsafe(50),
        "master_keys": lambda: keyring.new_master_key_entry("local-"),
        "lookup_key": keyring.new_key_text,
        # Signs the audit checkpoints beat writes (BEDSIDE_AUDIT_CHECKPOINT_KEY in production).
        "audit_checkpoint_key": lambda: secrets.token_urlsafe(32),
        # The embedded PostgreSQL's logins (devtools/localstack.py sets them on the cluster).
        **{
            paths.embedded_password_file(role).name: lambda: secrets.token_urlsafe(32)
            for role in (paths.EMBEDDED_SUPERUSER, paths.EMBEDDED_OWNER, paths.EMBEDDED_APP_ROLE)
        },
    }
    made = []
    for name, make in wanted.items():
        path = directory / name
        if not path.exists():
            keyring.local_secret(path, make())
            made.append(path)
    # whitenoise warns at every start when STATIC_ROOT is missing (collectstatic fills it).
    paths.private_folder(directory / "static")
    return made


def main() -> int:
    for path in ensure():
        print(f"made {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An embedded PostgreSQL of a test's own, started and stopped by `devtools.localstack` as
`make run` does, under a state folder and port of the test's own."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bedside import paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def localstack(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "devtools.localstack", *args],
        cwd=paths.PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )


def stack_env(state: Path) -> dict[str, str]:
    """The environment of the local stack under ``state``: no DATABASE_URL, so the embedded
    database (and paths.default_database_url) is the one in that folder."""
    env = {
        **os.environ,
        "BEDSIDE_HOME": str(state),
        "BEDSIDE_EMBEDDED_PG_PORT": str(free_port()),
    }
    env.pop("DATABASE_URL", None)
    return env


@contextmanager
def paths_of(env: dict[str, str]) -> Iterator[None]:
    """bedside.paths in this process answering for the stack of ``env``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BEDSIDE_HOME", env["BEDSIDE_HOME"])
        patch.setenv("BEDSIDE_EMBEDDED_PG_PORT", env["BEDSIDE_EMBEDDED_PG_PORT"])
        yield


@contextmanager
def embedded_postgres(state: Path) -> Iterator[dict[str, str]]:
    """Start the embedded PostgreSQL under ``state``; yields the stack's environment."""
    env = stack_env(state)
    started = localstack(env, "up", "--only", "postgres")
    # localstack leaves a port that already answers alone: never test someone else's server.
    assert "starting PostgreSQL" in started.stdout, started.stdout + started.stderr
    try:
        yield env
    finally:
        localstack(env, "down")

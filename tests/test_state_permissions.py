"""The state folder is its owner's only (issue 17, finding 16): the local keys, the logs and
the broker's append-only file (queued cases) were world-readable. Folders 0700, files 0600,
also what an earlier, looser start left behind; the broker is started for real to see what
it writes."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from bedside import local_secrets, paths
from devtools import localstack


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _loose(path: Path) -> list[str]:
    """Everything under ``path`` (itself included) that group or others may open."""
    entries = [path, *path.rglob("*")]
    return [f"{e}: {oct(_mode(e))}" for e in entries if _mode(e) & 0o077]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)  # as an older Bedside (or a umask of 022) left it
    monkeypatch.setenv("BEDSIDE_HOME", str(state))
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/elsewhere")
    return state


def test_local_keys_and_their_folder_are_the_owners_only(home: Path) -> None:
    made = local_secrets.ensure()
    assert {path.name for path in made} == {
        "secret_key",
        "master_keys",
        "lookup_key",
        "audit_checkpoint_key",
        "pg_postgres_password",
        "pg_bedside_owner_password",
        "pg_bedside_app_password",
    }
    assert _mode(home) == 0o700
    assert _loose(home) == []


def test_the_stacks_logs_are_the_owners_only_also_ones_left_before(home: Path) -> None:
    logs = home / "logs"
    logs.mkdir(mode=0o755)
    logs.chmod(0o755)
    old = logs / "web.log"
    old.write_text("an earlier run\n")
    old.chmod(0o644)
    assert localstack.state() == home
    with paths.private_log(old) as handle:
        handle.write(b"this run\n")
    with paths.private_log(logs / "worker.log") as handle:
        handle.write(b"a new log\n")
    assert old.read_text() == "an earlier run\nthis run\n"
    assert _loose(home) == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_brokers_append_only_file_and_log_are_the_owners_only(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    port = _free_port()
    monkeypatch.setenv("BEDSIDE_EMBEDDED_BROKER_PORT", str(port))
    (home / "logs").mkdir()
    (home / "logs" / "broker.log").write_text("an earlier start\n")
    (home / "logs" / "broker.log").chmod(0o644)
    assert localstack.broker_up()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"SET queued case-1\r\n")
            assert conn.recv(64) == b"+OK\r\n"
        broker = home / "broker"
        assert (broker / "appendonly.aof").read_bytes().count(b"case-1") == 1
        assert _loose(home) == []
    finally:
        localstack.broker_down()

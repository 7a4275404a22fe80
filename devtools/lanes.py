"""``make test``: the whole suite in two lanes at once, on the services ``localstack exec``
started.

    python -m devtools.lanes             # the e2e lane beside the rest; exit 0 if both pass
    python -m devtools.lanes ARGS...     # one plain pytest run with ARGS (a file, -k, -m ...)

The end-to-end tests (``-m e2e``) spend most of their time waiting for vLLM to decode on the
CPU (nine minutes of the suite's twenty-six on the 2-core machine), while the rest of the
suite (unit, stack and browser tiers) barely touches the model. Run one after the other,
those waits add up; run side by side, the suite takes about as long as its longer lane.

The two lanes cannot see each other's data: the e2e lane has its own test database (the
database name with ``_e2e`` appended; pytest-django adds ``test_``) and, on a Redis broker,
its own Redis database. Its Celery workers consume queues private to each test
(tests/e2e/conftest.py), and no test of the other lane purges or inspects the broker as a
whole. vLLM runs under ``nice`` (devtools/localstack.py), so the other lane's processes come
first when both want a core.

The e2e lane's output goes to ``tests/artifacts/lane-e2e.log`` and is printed whole once
both lanes are done, so the two never interleave.
Plain Python, no Django: it runs before Django is configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bedside import local_secrets, paths

PYTEST = [sys.executable, "-m", "pytest"]
E2E_LOG = paths.PROJECT_ROOT / "tests" / "artifacts" / "lane-e2e.log"


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def e2e_environment(environ: dict[str, str]) -> dict[str, str]:
    """The e2e lane's settings: the same servers, another database, another Redis db."""
    database_url = environ.get("DATABASE_URL") or paths.owner_database_url()
    name = urlsplit(database_url).path.lstrip("/") or paths.EMBEDDED_DATABASE
    env = {**environ, "DATABASE_URL": _with_path(database_url, f"/{name}_e2e")}
    broker_url = environ.get("CELERY_BROKER_URL") or paths.default_broker_url()
    if urlsplit(broker_url).scheme in ("redis", "rediss"):
        current = urlsplit(broker_url).path.strip("/") or "0"
        env["CELERY_BROKER_URL"] = _with_path(broker_url, f"/{(int(current) + 1) % 16}")
    else:
        env["CELERY_BROKER_URL"] = broker_url
    return env


def run_two_lanes() -> int:
    # The test session would make the local keys itself; made here once, before two
    # sessions could race to write them.
    local_secrets.ensure()
    E2E_LOG.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    with open(E2E_LOG, "wb") as log:
        e2e = subprocess.Popen(
            [*PYTEST, "-m", "e2e"],
            cwd=paths.PROJECT_ROOT,
            env=e2e_environment(dict(os.environ)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        print(f"== lane e2e: pytest -m e2e, pid {e2e.pid}, output in {E2E_LOG} ==", flush=True)
        print("== lane rest: pytest -m 'not e2e' ==", flush=True)
        rest = subprocess.run([*PYTEST, "-m", "not e2e"], cwd=paths.PROJECT_ROOT, check=False)
        rest_s = time.monotonic() - started
        if e2e.poll() is None:
            print(f"== lane rest done in {rest_s:.0f} s; waiting for lane e2e ==", flush=True)
        e2e_code = e2e.wait()
    print(f"== lane e2e (done at {time.monotonic() - started:.0f} s) ==", flush=True)
    sys.stdout.write(Path(E2E_LOG).read_text(errors="replace"))
    print(
        f"== lanes: rest exit {rest.returncode} ({rest_s:.0f} s), e2e exit {e2e_code}, "
        f"{time.monotonic() - started:.0f} s in all ==",
        flush=True,
    )
    return rest.returncode or e2e_code


def main(argv: list[str]) -> int:
    if argv:
        return subprocess.run([*PYTEST, *argv], cwd=paths.PROJECT_ROOT, check=False).returncode
    return run_two_lanes()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

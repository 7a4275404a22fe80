"""pytest plugin (``-p tests.local_state`` in pyproject): the test session makes the local
keys before pytest-django imports settings, which only read them.

On the embedded database (DATABASE_URL unset) the session connects as the database's owner,
not as the app role the web server uses: pytest-django creates and drops a test database,
and the suite installs the append-only triggers by migrating it, which the app role may not
(deploy/postgres/app_role.sql). What the app role may do is tested by acting as it
(tests/audit/test_append_only.py)."""

from __future__ import annotations

import os

import pytest

from bedside import local_secrets, paths


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    local_secrets.ensure()
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = paths.owner_database_url()

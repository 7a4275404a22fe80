"""pytest plugin (``-p tests.local_state`` in pyproject): the test session makes the local
keys before pytest-django imports settings, which only read them."""

from __future__ import annotations

import pytest

from bedside import local_secrets


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests() -> None:
    local_secrets.ensure()

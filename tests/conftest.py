"""Shared fixtures. Named users, whose rights are written down once:

- alice: clinician (submits cases, sees her own)
- bob: clinician (must not see alice's cases)
- carol: auditor (sees every case, submits none)
- an integration key (an EHR), acting as its own service user

tests/factories.py builds the rest (more users, keys, cases, runs, reviews).

Every test belongs to exactly one tier (pyproject.toml lists them): the folder it lives in
decides (``TIER_BY_FOLDER``; anything else is ``unit``), unless the test names its tier
itself. ``slow`` is added by hand, with ``pytestmark`` or a decorator, to what takes over
~10 s. ``make test-fast`` runs ``unit and not slow``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import Any as SettingsWrapper  # pytest-django does not export its type

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.contrib.staticfiles.handlers import StaticFilesHandler
from rest_framework.test import APIClient
from whitenoise.base import WhiteNoise, scantree

from bedside import roles
from bedside.accounts import services as accounts_services
from reasoning import services as reasoning_services
from tests import factories
from tests.browser.support import browser, page, page_without_js  # noqa: F401 (fixtures)
from tests.factories import issued_key, user_with_role
from tests.fakes import FakeModelServer

TESTS = Path(__file__).parent
TIERS = ("unit", "stack", "browser", "e2e")
# Folders whose tests start real processes or drive a real browser; the rest are unit tests
# (the test database and the fake model server only).
TIER_BY_FOLDER = {"faults": "stack", "deploy": "stack", "browser": "browser", "e2e": "e2e"}


def tiers_of(item: pytest.Item) -> list[str]:
    return [tier for tier in TIERS if item.get_closest_marker(tier) is not None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its folder's tier unless it names one itself, and refuse the run
    if any test ends up with no tier or with more than one."""
    wrong = []
    for item in items:
        if not tiers_of(item):
            folder = item.path.relative_to(TESTS).parts[0]
            item.add_marker(TIER_BY_FOLDER.get(folder, "unit"))
        if len(tiers_of(item)) != 1:
            wrong.append(f"{item.nodeid}: {tiers_of(item) or 'no tier'}")
    if wrong:
        raise pytest.UsageError("each test needs exactly one tier:\n" + "\n".join(wrong))


@pytest.fixture(autouse=True)
def fast_password_hashing(request: pytest.FixtureRequest, settings: SettingsWrapper) -> None:
    """Unit tests hash passwords with MD5: Django's PBKDF2 costs over half a second a hash on
    the 2-core machine, which was most of ``make test-fast``. Tiers with other processes
    keep the real hasher, since those processes check the same passwords."""
    if request.node.get_closest_marker("unit"):
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def static_files_scanned_once() -> Iterator[None]:
    """WhiteNoise reads every file under STATIC_ROOT (about 350, with their compressed
    variants and headers) each time its middleware is built, and Django's test client builds
    the middleware anew for every client: about 60 ms a client, most of the route tables'
    time. Here each (folder, its files' sizes and times, WhiteNoise's settings) is read once
    a session; a WhiteNoise built afterwards gets the same entries it would have read.
    What decides its headers (WhiteNoise's settings, STATIC_URL, DEBUG, the storage) is part
    of the key, so a test that changes them gets a fresh read."""
    scanned: dict[tuple[Any, ...], dict[str, Any]] = {}
    read = WhiteNoise.update_files_dictionary

    def update_once(self: WhiteNoise, root: str, prefix: str) -> None:
        listing = tuple(sorted((path, st.st_size, st.st_mtime_ns) for path, st in scantree(root)))
        options = (self.max_age, self.allow_all_origins, self.charset, self.index_file)
        configured = [
            repr(getattr(django_settings, name, None))
            for name in dir(django_settings)
            if name.startswith("WHITENOISE_") or name in ("STATIC_URL", "DEBUG", "STORAGES")
        ]
        key = (type(self), root, prefix, listing, options, tuple(configured))
        if key not in scanned:
            files, self.files = self.files, {}
            read(self, root, prefix)
            scanned[key], self.files = self.files, {**files, **self.files}
        else:
            self.files.update(scanned[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(WhiteNoise, "update_files_dictionary", update_once)
        yield


@pytest.fixture
def alice(db: None) -> User:
    return user_with_role("alice", roles.CLINICIAN)


@pytest.fixture
def bob(db: None) -> User:
    return user_with_role("bob", roles.CLINICIAN)


@pytest.fixture
def carol(db: None) -> User:
    return user_with_role("carol", roles.AUDITOR)


@pytest.fixture
def integration_key(db: None) -> accounts_services.IssuedKey:
    return issued_key("ehr-test", roles.INTEGRATION)


@pytest.fixture
def ehr_client(integration_key: accounts_services.IssuedKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {integration_key.key}")
    return client


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def fake_model(settings: SettingsWrapper) -> Iterator[FakeModelServer]:
    server = FakeModelServer(model=settings.BEDSIDE_MODEL_NAME).start()
    settings.BEDSIDE_MODEL_BASE_URL = server.base_url
    settings.BEDSIDE_RETRY_BACKOFF_BASE_S = 1
    reasoning_services.model_client.cache_clear()
    reasoning_services._served_model_revision.cache_clear()
    yield server
    server.stop()
    reasoning_services.model_client.cache_clear()
    reasoning_services._served_model_revision.cache_clear()


@pytest.fixture
def completed_case(alice: User, fake_model: FakeModelServer) -> Any:
    """One of alice's cases, run to completion against the fake model server."""
    return factories.completed_case(alice, fake_model)


@pytest.fixture(scope="session", autouse=True)
def data_keys_shared_with_child_processes() -> None:
    """Workers and web servers that tests start read the keys this process reads, even under
    another BEDSIDE_HOME (whose state folder would make keys of its own)."""
    from django.conf import settings

    def text(secret: bytes) -> str:
        return base64.urlsafe_b64encode(secret).decode()

    os.environ.setdefault(
        "BEDSIDE_MASTER_KEYS",
        ",".join(f"{key.id}:{text(key.secret)}" for key in settings.BEDSIDE_MASTER_KEYS),
    )
    os.environ.setdefault("BEDSIDE_LOOKUP_KEY", text(settings.BEDSIDE_LOOKUP_KEY))
    os.environ.setdefault("DJANGO_SECRET_KEY", settings.SECRET_KEY)


@pytest.fixture(scope="session", autouse=True)
def static_files_collected() -> None:
    """Pages name their static files by the hashed names in collectstatic's manifest, as in
    production; the processes tests start share this state folder and so this manifest."""
    from django.contrib.staticfiles import handlers
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)
    # pytest-django's live server serves /static/ through the finders, which know only the
    # source names; serve what collectstatic wrote, hashed names included, as whitenoise does.
    handlers.StaticFilesHandler = CollectedStaticFilesHandler  # type: ignore[misc]


class CollectedStaticFilesHandler(StaticFilesHandler):
    def serve(self, request: Any) -> Any:
        from django.conf import settings
        from django.views.static import serve

        return serve(request, self.file_path(request.path), document_root=str(settings.STATIC_ROOT))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """Let pytest-django empty the append-only tables of the TEST database between
    transactional tests (it flushes with TRUNCATE, which the audit triggers refuse unless
    ``bedside.allow_truncate`` is on). Only this throw-away database gets the setting."""
    from django.db import connection

    with django_db_blocker.unblock():
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET bedside.allow_truncate = on')
            cursor.execute("SET bedside.allow_truncate = on")  # this open session too

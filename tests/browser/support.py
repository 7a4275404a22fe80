"""Headless Chromium (the machine's own, driven by Playwright) against Django's live test
server. Screens are tested the way a person uses them.

Screenshots go to ``tests/artifacts/`` (ignored by git, kept by CI as the tests' output).
Every request a page makes is recorded on ``page.requests_seen``, so a test can assert that
nothing left 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django then refuses ORM calls
# from the test body unless told that this is deliberate (the test is not async code).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role


def chromium_path() -> str:
    path = os.environ.get("BEDSIDE_CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError(
            "no Chromium found: `make install-browser` installs Debian's chromium "
            "(or set BEDSIDE_CHROMIUM to a Chromium executable)"
        )
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


def _new_page(browser: Browser, **context_options: Any) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **context_options)
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.requests_seen = seen  # type: ignore[attr-defined]
    # Requests the page's Content-Security-Policy stopped in the browser: they never left it.
    blocked: list[str] = []
    page.on(
        "requestfailed",
        lambda request: (
            blocked.append(request.url)
            if request.failure in ("csp", "net::ERR_BLOCKED_BY_CSP")
            else None
        ),
    )
    page.requests_blocked_by_policy = blocked  # type: ignore[attr-defined]
    return page


@pytest.fixture
def page(browser: Browser, live_server: Any) -> Iterator[Page]:
    page = _new_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def page_without_js(browser: Browser, live_server: Any) -> Iterator[Page]:
    page = _new_page(browser, java_script_enabled=False)
    yield page
    page.context.close()


def sign_in(page: Page, live_server: Any, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def only_local_requests(page: Page, live_server: Any) -> list[str]:
    """The requests the page made that did not go to the live server on 127.0.0.1 (object
    URLs the page made itself, ``blob:`` of the server's own origin, are local too; a request
    the page's policy stopped in the browser never left it)."""
    page.wait_for_load_state("networkidle")  # every request seen has also ended
    blocked = set(page.requests_blocked_by_policy)  # type: ignore[attr-defined]
    return [
        url
        for url in page.requests_seen  # type: ignore[attr-defined]
        if url not in blocked
        and not (
            url.startswith(live_server.url + "/")
            or url.startswith(f"blob:{live_server.url}/")
            or url.startswith("data:")
        )
    ]


# The widths a screen is checked at: a phone, a small laptop, a desktop.
WIDTHS = (390, 1024, 1366)
SERIOUS = {"serious", "critical"}


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    assert results.response["testEngine"]["name"] == "axe-core"  # it ran, on this page
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in SERIOUS
    ]


def check_widths(page: Page, name: str) -> None:
    """At each width: nothing wider than the window (a wide table scrolls inside its own
    box), a screenshot kept, and no serious accessibility violation."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width, f"{name} is {overflow} px wide at {width} px: {_widest(page)}"
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert serious_violations(page) == [], name


def _widest(page: Page) -> list[str]:
    """The elements that reach past the window's right edge (for the failure message)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll('main *')]
              .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
              .filter(e => !e.closest('.table-scroll, .audit-table.compact, .answer-table'))
              .slice(0, 6)
              .map(e => e.tagName + '.' + e.className + '#' + e.id)"""
        )
    )

"""The API's reading pages render in the browser under their Content-Security-Policy, from
this server's own files only."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import only_local_requests


@pytest.mark.parametrize(
    ("path", "shows"),
    [("/api/v1/docs/", "#operations-tag-cases"), ("/api/v1/redoc/", "text=/api/v1/cases/")],
)
def test_api_documentation_renders_with_local_files_only(
    page: Page, live_server: Any, path: str, shows: str
) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(f"{live_server.url}{path}")
    expect(page.locator(shows).first).to_be_visible(timeout=20_000)
    refused = [p for p in problems if "Content Security Policy" in p]
    # The policy may refuse something from outside (Redoc's "powered by" logo is fetched from
    # its makers' CDN): that is the policy working. Nothing of our own may be refused.
    assert [p for p in refused if "'http" not in p or "'https://cdn.redoc.ly/" not in p] == []
    assert only_local_requests(page, live_server) == []

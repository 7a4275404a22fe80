"""No caching of patient data (issue 17, finding 8): every route, asked by every principal,
answers ``Cache-Control: no-store`` and ``Pragma: no-cache`` (error pages, redirects and
exports included); static files alone keep their long cache.

The routes are the access table of tests/test_url_access.py, so a new URL is covered the day
it is added there."""

from __future__ import annotations

import json

from django.test import Client
from rest_framework.test import APIClient

from tests.test_url_access import (
    FORM_BODIES,
    JSON_BODIES,
    PRINCIPALS,
    ROUTES,
    World,
    _client,
    _path,
    world,  # noqa: F401 (fixture)
)


def _headers(client: APIClient, method: str, route: str, path: str) -> tuple[int, str, str]:
    if (route, method) in JSON_BODIES:
        body = json.dumps(JSON_BODIES[route, method])
        response = client.generic(method, path, body, content_type="application/json")
    elif method == "POST":
        response = client.post(path, FORM_BODIES.get((route, method), {}))
    else:
        response = client.generic(method, path)
    return (
        response.status_code,
        response.headers.get("Cache-Control", ""),
        response.headers.get("Pragma", ""),
    )


def test_every_route_as_every_principal_forbids_caching(world: World) -> None:  # noqa: F811
    cached: list[str] = []
    for route, calls in ROUTES.items():
        for method, _ in calls:
            for principal in PRINCIPALS:
                path = _path(route, principal, world)
                status, cache_control, pragma = _headers(
                    _client(principal, world), method, route, path
                )
                directives = {part.strip() for part in cache_control.split(",")}
                if "no-store" not in directives or pragma != "no-cache":
                    cached.append(
                        f"{method} /{route} as {principal} ({status}): "
                        f"Cache-Control {cache_control!r}, Pragma {pragma!r}"
                    )
    assert cached == [], "\n".join(["", *cached])


def test_an_unknown_path_is_not_cached_either(db: None) -> None:
    response = Client().get("/cases/no-such-page/")
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"

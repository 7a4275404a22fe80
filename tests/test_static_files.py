"""Static files go out under hashed names (whitenoise's manifest storage), so a browser never
pairs a new page with a stale cached script."""

from __future__ import annotations

import re

from django.test import Client


def test_pages_name_hashed_static_files_that_are_served_with_a_long_cache() -> None:
    page = Client().get("/accounts/login/")
    assert page.status_code == 200
    found = re.search(r"/static/bedside/bedside\.[0-9a-f]{12}\.css", page.content.decode())
    assert found, "the page links the unhashed stylesheet"
    served = Client().get(found.group(0))
    assert served.status_code == 200
    assert "immutable" in served.headers.get("Cache-Control", "")

"""The test hospital's OpenID Connect provider (``tests/oidc_provider/server.mjs``: panva's
certified ``oidc-provider`` on Node, installed by ``make install-oidc-provider``), started
as its own process on a free port, and a person's way through it without a browser.

People (``server.mjs``): dr.ward (groups: ed-physicians), aud.smith (compliance),
nurse.jones (ward-7-nurses, which maps to no role). ``ROLE_GROUPS`` maps the first two.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "tests" / "oidc_provider"
CLIENT_ID = "bedside"
CLIENT_SECRET = "bedside-test-secret"
ROLE_GROUPS = "clinician=ed-physicians; auditor=compliance"
PASSWORDS = {"dr.ward": "ward-pass-1", "aud.smith": "smith-pass-1", "nurse.jones": "jones-pass-1"}
TEST_CALLBACK = "http://testserver/oidc/callback/"
TEST_SIGNED_OUT = "http://testserver/accounts/login/"


def node() -> str:
    path = shutil.which("node")
    if not path or not (FOLDER / "node_modules" / "oidc-provider").is_dir():
        raise RuntimeError(
            "the OpenID Connect provider is not installed: `make install-oidc-provider` "
            "(npm ci --prefix tests/oidc_provider; needs Node.js 20 or later)"
        )
    return path


class OidcProvider:
    """One provider process; ``url`` is its issuer."""

    def __init__(self, *, redirect_uris: list[str], post_logout_uris: list[str]) -> None:
        args = [node(), str(FOLDER / "server.mjs"), "--port", "0"]
        args += ["--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        for uri in post_logout_uris:
            args += ["--post-logout-uri", uri]
        self.process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = f"http://127.0.0.1:{int(line.split()[-1])}"

    def version(self) -> str:
        package = json.loads((FOLDER / "node_modules/oidc-provider/package.json").read_text())
        return str(package["version"])

    def set_groups(self, login: str, groups: list[str]) -> None:
        response = httpx.put(f"{self.url}/test/accounts/{login}/groups", json=groups)
        assert response.status_code == 204, response.text

    def signed(self, claims: dict[str, Any]) -> str:
        """A JWT with these claims, signed with the provider's own key."""
        response = httpx.post(f"{self.url}/test/sign", json=claims)
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def subject_of(self, login: str) -> str:
        response = httpx.post(f"{self.url}/test/sign", json={})
        return str(response.json()["subjects"][login])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def settings_for(provider_url: str) -> dict[str, Any]:
    """The settings that turn single sign-on on against this provider."""
    return {
        "BEDSIDE_OIDC_ISSUER": provider_url,
        "BEDSIDE_OIDC_CLIENT_ID": CLIENT_ID,
        "BEDSIDE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "BEDSIDE_OIDC_SCOPES": "openid profile email groups",
        "BEDSIDE_OIDC_ROLE_GROUPS": ROLE_GROUPS,
        "BEDSIDE_OIDC_PROVIDER_NAME": "Hospital sign-in (test provider)",
        "AUTHENTICATION_BACKENDS": [
            "bedside.accounts.sign_in.SignInBackend",
            "bedside.accounts.sso.SsoBackend",
        ],
    }


def through_provider(
    authorize_url: str, *, login: str, password: str | None = None, browser: httpx.Client
) -> str:
    """A person at the provider: from Bedside's redirect to the provider, through its own
    login page (the form posted as a browser would), to the URL the provider sends them
    back to (Bedside's callback with a code and the state). ``browser`` keeps the
    provider's cookies, as a browser would between sign-ins."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    response = browser.get(authorize_url)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if not location.startswith(origin):
                return location
            response = browser.get(location)
            continue
        form = re.search(r'<form method="post" action="([^"]+)"', response.text)
        assert form is not None, response.text[:500]
        response = browser.post(
            urljoin(str(response.url), unescape(form.group(1))),
            data={"login": login, "password": password or PASSWORDS[login]},
        )
    raise AssertionError("the provider never sent the person back")

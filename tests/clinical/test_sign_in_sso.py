"""Single sign-on through the hospital's OpenID Connect provider (issue 19), against a real
provider process (``tests/oidc_server.py``: panva's oidc-provider), its own login page
posted as a browser would: people made at their first sign-in with the roles their groups
give, roles following the groups at every sign-in, refused ID tokens audited, single
logout, the provider down, and local passwords switched off but for break-glass admins."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from typing import Any as SettingsWrapper  # pytest-django does not export its type
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from audit.models import AuditEvent
from bedside import roles
from bedside.accounts import sso
from bedside.accounts.identity import SESSION_METHOD_KEY
from bedside.accounts.models import SsoIdentity
from tests.fakes import FakeModelServer
from tests.oidc_server import (
    CLIENT_ID,
    TEST_CALLBACK,
    TEST_SIGNED_OUT,
    OidcProvider,
    settings_for,
    through_provider,
)

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role
DEFAULT_GROUPS = {
    "dr.ward": ["ed-physicians"],
    "aud.smith": ["compliance"],
    "nurse.jones": ["ward-7-nurses"],
}


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    server = OidcProvider(redirect_uris=[TEST_CALLBACK], post_logout_uris=[TEST_SIGNED_OUT])
    yield server
    server.stop()


@pytest.fixture
def sso_on(provider: OidcProvider, settings: SettingsWrapper) -> Iterator[OidcProvider]:
    for name, value in settings_for(provider.url).items():
        setattr(settings, name, value)
    for login, groups in DEFAULT_GROUPS.items():
        provider.set_groups(login, groups)
    sso.discovery_forget()
    yield provider
    sso.discovery_forget()


def sso_sign_in(client: Client, login: str) -> Any:
    """Sign-in with the provider, start to callback; the callback's answer."""
    start = client.get("/oidc/start/")
    assert start.status_code == 302, start.content[:500]
    with httpx.Client() as browser:
        back = through_provider(start["Location"], login=login, browser=browser)
    assert back.startswith(TEST_CALLBACK), back
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")


def latest(code: str) -> AuditEvent:
    event = AuditEvent.objects.filter(code=code).order_by("-id").first()
    assert event is not None, f"no {code} event"
    return event


def role_names(username: str) -> set[str]:
    return set(User.objects.get(username=username).groups.values_list("name", flat=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_start_sends_the_person_to_the_provider_with_pkce_state_and_nonce(
    sso_on: OidcProvider,
) -> None:
    start = Client().get("/oidc/start/")
    assert start.status_code == 302
    url = urlsplit(start["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{sso_on.url}/auth"
    query = parse_qs(url.query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [TEST_CALLBACK]


def test_first_sign_in_makes_the_person_with_the_roles_of_their_groups(
    sso_on: OidcProvider,
) -> None:
    client = Client()
    response = sso_sign_in(client, "dr.ward")
    assert response.status_code == 302 and response["Location"] == "/"
    ward = User.objects.get(username="dr.ward")
    assert role_names("dr.ward") == {roles.CLINICIAN}
    assert not ward.has_usable_password() and not ward.is_staff and not ward.is_superuser
    identity = SsoIdentity.objects.get(user=ward)
    assert (identity.issuer, identity.subject) == (sso_on.url, sso_on.subject_of("dr.ward"))
    assert client.session[SESSION_METHOD_KEY] == "sso"
    signed_in = latest("login.succeeded")
    assert (signed_in.object_id, signed_in.details) == ("dr.ward", {"method": "sso"})
    changed = latest("role.changed")
    assert (changed.details["old"], changed.details["new"]) == ([], ["clinician"])
    assert changed.details["source"] == "sso"
    assert client.get("/cases/").status_code == 200  # the clinician's screens


def test_a_group_change_at_the_provider_changes_the_role_at_the_next_sign_in(
    sso_on: OidcProvider,
) -> None:
    assert sso_sign_in(Client(), "dr.ward").status_code == 302
    assert role_names("dr.ward") == {roles.CLINICIAN}

    sso_on.set_groups("dr.ward", ["compliance"])
    client = Client()
    assert sso_sign_in(client, "dr.ward").status_code == 302
    assert role_names("dr.ward") == {roles.AUDITOR}
    changed = latest("role.changed")
    assert (changed.details["old"], changed.details["new"]) == (["clinician"], ["auditor"])
    assert client.get("/cases/new/").status_code == 403  # no longer a clinician

    sso_on.set_groups("dr.ward", [])  # out of every group: no role at all
    assert sso_sign_in(Client(), "dr.ward").status_code == 302
    assert role_names("dr.ward") == set()
    assert User.objects.filter(username="dr.ward").count() == 1  # the same person each time


def test_a_person_in_no_mapped_group_is_signed_in_with_no_role_and_told_to_ask_it(
    sso_on: OidcProvider,
) -> None:
    client = Client()
    assert sso_sign_in(client, "nurse.jones").status_code == 302
    assert role_names("nurse.jones") == set()
    page = client.get("/").content.decode()
    assert "You have no role in Bedside yet" in page and "IT service desk" in page
    assert client.get("/cases/").status_code in (302, 403)
    assert client.get("/audit/").status_code in (302, 403)


def tokens_replaced(monkeypatch: pytest.MonkeyPatch, change: Callable[[str], str]) -> None:
    """The provider's real token answer, its ID token passed through ``change`` on the way
    (what an attacker between Bedside and the provider, or a broken provider, would do)."""
    real = sso.SsoBackend.get_token

    def get_token(self: sso.SsoBackend, payload: dict[str, Any]) -> Any:
        answer = real(self, payload)
        answer["id_token"] = change(answer["id_token"])
        return answer

    monkeypatch.setattr(sso.SsoBackend, "get_token", get_token)


def flip_a_signature_byte(token: str) -> str:
    head, body, signature = token.split(".")
    raw = bytearray(jwt.utils.base64url_decode(signature))
    raw[10] ^= 0x01
    return f"{head}.{body}.{jwt.utils.base64url_encode(bytes(raw)).decode()}"


def assert_refused(response: Any, client: Client, reason: str) -> None:
    assert response.status_code in (400, 403), response.status_code
    assert "could not be completed" in response.content.decode()
    assert "_auth_user_id" not in client.session
    failed = latest("login.failed")
    assert failed.details == {"method": "sso", "reason": reason}, failed.details
    assert not AuditEvent.objects.filter(code="login.succeeded").exists()


def test_a_tampered_id_token_is_refused_and_audited(
    sso_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens_replaced(monkeypatch, flip_a_signature_byte)
    client = Client()
    response = sso_sign_in(client, "dr.ward")
    assert_refused(response, client, "ID token signature does not verify")
    assert not User.objects.filter(username="dr.ward").exists()


def resigned(provider: OidcProvider, **changes: Any) -> Callable[[str], str]:
    def change(token: str) -> str:
        claims = jwt.decode(token, options={"verify_signature": False})
        return provider.signed({**claims, **changes})

    return change


def test_an_expired_id_token_is_refused_and_audited(
    sso_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    tokens_replaced(monkeypatch, resigned(sso_on, iat=now - 7200, exp=now - 3600))
    client = Client()
    assert_refused(sso_sign_in(client, "dr.ward"), client, "expired ID token")


def test_an_id_token_for_another_client_is_refused(
    sso_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens_replaced(monkeypatch, resigned(sso_on, aud="pharmacy-system"))
    client = Client()
    reason = "ID token issued to another client (aud)"
    assert_refused(sso_sign_in(client, "dr.ward"), client, reason)


def test_an_id_token_with_another_nonce_is_refused(
    sso_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens_replaced(monkeypatch, resigned(sso_on, nonce="from-another-sign-in"))
    client = Client()
    assert_refused(sso_sign_in(client, "dr.ward"), client, "nonce mismatch")


def test_the_verify_path_checks_signature_and_nonce_of_a_real_token(sso_on: OidcProvider) -> None:
    client = Client()
    assert sso_sign_in(client, "dr.ward").status_code == 302
    token = client.session["oidc_id_token"]
    nonce = jwt.decode(token, options={"verify_signature": False})["nonce"]
    assert sso.id_token_claims(token, nonce=nonce)["preferred_username"] == "dr.ward"
    with pytest.raises(sso.SignInRefused, match="signature does not verify"):
        sso.id_token_claims(flip_a_signature_byte(token), nonce=nonce)
    with pytest.raises(sso.SignInRefused, match="nonce mismatch"):
        sso.id_token_claims(token, nonce="another")
    with pytest.raises(sso.SignInRefused, match="nonce mismatch"):
        sso.id_token_claims(token, nonce=None)


def test_tokens_naming_unknown_keys_do_not_make_bedside_hammer_the_providers_jwks(
    sso_on: OidcProvider,
) -> None:
    """A made-up kid fetches the provider's JWKS again (it may have rotated its keys), but not
    sooner than the fetcher's floor after the last fetch, as for the EHRs' keys."""
    forged = jwt.encode(
        {"iss": sso_on.url, "aud": CLIENT_ID, "sub": "someone", "nonce": "n"},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
        headers={"kid": "never-published"},
    )
    with pytest.raises(sso.SignInRefused, match="does not publish"):
        sso.id_token_claims(forged, nonce="n")
    fetched = sso._jwks
    assert fetched is not None
    for _ in range(3):
        with pytest.raises(sso.SignInRefused, match="does not publish"):
            sso.id_token_claims(forged, nonce="n")
    assert sso._jwks is fetched  # the keys fetched for the first token, not fetched again


def test_a_callback_with_a_state_bedside_did_not_send_is_refused_and_audited(
    sso_on: OidcProvider,
) -> None:
    client = Client()
    client.get("/oidc/start/")
    response = client.get("/oidc/callback/?code=abc&state=not-ours")
    assert_refused(response, client, "state mismatch")


def test_the_provider_saying_no_is_a_clear_page_and_audited(sso_on: OidcProvider) -> None:
    client = Client()
    start = client.get("/oidc/start/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    response = client.get(f"/oidc/callback/?error=access_denied&state={state}")
    assert_refused(response, client, "provider error: access_denied")


def test_a_hospital_user_name_held_by_a_local_account_is_not_merged(
    sso_on: OidcProvider,
) -> None:
    local = User.objects.create_user("dr.ward", password=PASSWORD)
    client = Client()
    response = sso_sign_in(client, "dr.ward")
    assert response.status_code == 403
    assert "already belongs to another Bedside account" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not SsoIdentity.objects.exists()
    assert "already belongs" in latest("login.failed").details["reason"]
    assert User.objects.get(username="dr.ward").pk == local.pk


def test_signing_out_ends_the_session_here_and_at_the_provider(sso_on: OidcProvider) -> None:
    client = Client()
    assert sso_sign_in(client, "dr.ward").status_code == 302
    token = client.session["oidc_id_token"]
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{sso_on.url}/session/end"
    query = parse_qs(target.query)
    assert query["id_token_hint"] == [token]
    assert query["post_logout_redirect_uri"] == [TEST_SIGNED_OUT]
    ended = latest("session.ended")
    assert ended.details == {"user": "dr.ward", "reason": "signed out", "method": "sso"}
    assert "_auth_user_id" not in client.session
    # The provider takes the request (hint and return address are its own).
    assert httpx.get(response["Location"]).status_code == 200


def test_a_local_sign_out_stays_local(sso_on: OidcProvider, alice: User) -> None:
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    response = client.post("/accounts/logout/")
    assert not response.get("Location", "").startswith(sso_on.url)


def test_the_provider_down_is_a_clear_page_and_break_glass_still_signs_in(
    sso_on: OidcProvider, settings: SettingsWrapper, fake_model: FakeModelServer
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings.BEDSIDE_OIDC_ISSUER = down
    settings.BEDSIDE_LOCAL_LOGIN = False
    client = Client()
    response = client.get("/oidc/start/")
    assert response.status_code == 503
    page = response.content.decode()
    assert f"The hospital sign-in service ({down}) is not answering" in page
    assert "break-glass" in page
    # The sign-in page says so too, without asking the provider again.
    assert f"({down}) is not answering" in client.get("/accounts/login/").content.decode()

    User.objects.create_superuser("breakglass", password=PASSWORD)
    signed_in = client.post("/accounts/login/", {"username": "breakglass", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert latest("login.succeeded").details == {"method": "local"}

    ready = Client().get("/readyz")
    assert ready.status_code == 200, ready.json()  # reported, not failed: see health.py
    assert ready.json()["reported"]["single_sign_on"]["ok"] is False
    assert "not answering" in ready.json()["reported"]["single_sign_on"]["detail"]


def test_readiness_reports_the_provider_answering(
    sso_on: OidcProvider, fake_model: FakeModelServer
) -> None:
    ready = Client().get("/readyz").json()
    assert ready["reported"]["single_sign_on"] == {"ok": True, "detail": "ok"}


def test_a_discovery_document_naming_another_issuer_is_refused(
    sso_on: OidcProvider, settings: SettingsWrapper
) -> None:
    settings.BEDSIDE_OIDC_ISSUER = sso_on.url + "/"  # the document says it without the slash
    response = Client().get("/oidc/start/")
    assert response.status_code == 503
    assert "names another issuer" in response.content.decode()


class DiscoveryServer:
    """An issuer on loopback that serves a well-formed discovery document of its own at
    ``document_path``; ``/.well-known/openid-configuration`` redirects there when
    ``redirect`` is set, else serves it, padded to ``pad`` bytes."""

    def __init__(self, *, redirect: bool, pad: int = 0) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer.asked.append(self.path)
                if self.path == "/.well-known/openid-configuration" and outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", f"{outer.url}/document")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({**outer.document(), "padding": "x" * outer.pad}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.redirect, self.pad = redirect, pad
        self.asked: list[str] = []
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def document(self) -> dict[str, str]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/auth",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "userinfo_endpoint": f"{self.url}/me",
        }

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("redirect", "pad", "why"),
    [(True, 0, "HTTP 302 from"), (False, 256_000, "answered over 256000 bytes")],
    ids=["redirected", "oversized"],
)
def test_a_discovery_document_behind_a_redirect_or_over_its_size_is_not_read(
    sso_on: OidcProvider, settings: SettingsWrapper, redirect: bool, pad: int, why: str
) -> None:
    """A redirect could lead off the host that was checked on the premises, so none is
    followed; a document without end is not read without end."""
    issuer = DiscoveryServer(redirect=redirect, pad=pad)
    try:
        settings.BEDSIDE_OIDC_ISSUER = issuer.url
        sso.discovery_forget()
        response = Client().get("/oidc/start/")
        assert response.status_code == 503, response.get("Location")
        assert why in response.content.decode()
        assert "/document" not in issuer.asked
        # The same issuer answering plainly is used: the refusal is the redirect or the size.
        issuer.redirect, issuer.pad = False, 0
        sso.discovery_forget()
        started = Client().get("/oidc/start/")
        assert started.status_code == 302
        assert started["Location"].startswith(f"{issuer.url}/auth?")
    finally:
        issuer.stop()


def test_a_provider_off_the_premises_is_refused_at_start_up(settings: SettingsWrapper) -> None:
    settings.BEDSIDE_OIDC_ISSUER = "https://login.example.com/tenant/v2.0"
    settings.BEDSIDE_OIDC_ALLOWED_HOSTS = []
    with pytest.raises(ImproperlyConfigured, match="BEDSIDE_OIDC_ALLOWED_HOSTS"):
        sso.check_configuration()


def test_the_sign_in_page_offers_the_provider_and_without_local_login_only_break_glass(
    sso_on: OidcProvider, settings: SettingsWrapper
) -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in with Hospital sign-in (test provider)" in page
    assert "Emergency administrator sign-in" not in page
    settings.BEDSIDE_LOCAL_LOGIN = False
    page = Client().get("/accounts/login/").content.decode()
    assert "Emergency administrator sign-in" in page


def test_without_local_login_a_clinician_password_is_refused_but_a_superuser_signs_in(
    settings: SettingsWrapper, alice: User
) -> None:
    settings.BEDSIDE_LOCAL_LOGIN = False
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert "passwords are switched off" in response.content.decode()
    assert "_auth_user_id" not in client.session
    failed = latest("login.failed")
    assert failed.details["method"] == "local"
    assert "switched off" in failed.details["reason"]
    # Enforced in the backend: any authenticate() call, not only this page.
    from django.contrib.auth import authenticate

    assert authenticate(None, username="alice", password=PASSWORD) is None

    User.objects.create_superuser("breakglass", password=PASSWORD)
    response = client.post("/accounts/login/", {"username": "breakglass", "password": PASSWORD})
    assert response.status_code == 302


def test_local_login_on_by_default_signs_a_clinician_in(alice: User) -> None:
    response = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302

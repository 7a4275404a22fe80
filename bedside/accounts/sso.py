"""Single sign-on through the hospital's OpenID Connect provider (Entra ID, Keycloak, ADFS).

mozilla-django-oidc runs the authorization code flow (state, nonce, PKCE with S256, the
code exchanged at the token endpoint). Bedside adds what it leaves out:

- discovery: the provider's endpoints come from ``<issuer>/.well-known/openid-configuration``
  (cached ``BEDSIDE_OIDC_DISCOVERY_CACHE_S``), whose ``issuer`` must be the configured one,
  and every endpoint it names must be on the premises (``bedside.hosts``);
- the ID token's full check: RS256 signature by a key of the provider's JWKS, ``iss``,
  ``aud`` (and ``azp``), ``exp``, ``iat``, ``sub`` and ``nonce`` (the library checks the
  signature and nonce only);
- people keyed by (issuer, ``sub``) in ``SsoIdentity``, their roles replaced from the groups
  claim at every sign-in (``identity.user_roles_replace``), and every refusal written as a
  ``login.failed`` with method ``sso`` and the reason.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from pydantic import BaseModel, ConfigDict, ValidationError

from audit.actors import actor_for
from audit.services import Actor
from bedside.accounts.access_audit import auth_failure_record, sign_in_attempt_recorded
from bedside.accounts.identity import (
    SignInMethod,
    parse_role_groups,
    roles_from_groups,
    user_roles_replace,
)
from bedside.accounts.jwks import JwksUnavailable, jwks_fetch, refetch_due
from bedside.accounts.models import SsoIdentity
from bedside.accounts.sign_in import login_locked_until
from bedside.accounts.throttling import source_refused
from bedside.hosts import EndpointRefused, check_model_endpoint
from bedside.http.bounded import AnswerNotOk, AnswerTooLarge, get_bounded

ALLOW_LIST = "BEDSIDE_OIDC_ALLOWED_HOSTS"
# A discovery document is a few kilobytes; this bounds what a wrong or hostile one costs.
DISCOVERY_MAX_BYTES = 256_000
CLOCK_SKEW_S = 30  # between Bedside's clock and the provider's, for exp and iat


class ProviderUnavailable(Exception):
    """The provider cannot be used now: unreachable, answering nonsense, or off the premises.
    The message is for the person at the sign-in page and names the provider."""


class SignInRefused(Exception):
    """This sign-in is refused; ``reason`` is what the audit event records."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = message or (
            "The hospital sign-in could not be completed, and nothing was signed in. "
            "Try again; if it keeps failing, tell IT the time it happened."
        )


class ProviderConfiguration(BaseModel):
    """What Bedside reads of the provider's discovery document."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None


def sso_enabled() -> bool:
    return bool(settings.BEDSIDE_OIDC_ISSUER)


def provider_name() -> str:
    return str(settings.BEDSIDE_OIDC_PROVIDER_NAME)


def role_groups() -> list[tuple[str, str]]:
    return parse_role_groups(settings.BEDSIDE_OIDC_ROLE_GROUPS, setting="BEDSIDE_OIDC_ROLE_GROUPS")


def check_configuration() -> None:
    """At start-up: the role mapping reads, and the issuer is on the premises (its other
    endpoints are checked when discovery names them)."""
    if not sso_enabled():
        return
    role_groups()
    try:
        check_model_endpoint(
            settings.BEDSIDE_OIDC_ISSUER,
            allowed_hosts=settings.BEDSIDE_OIDC_ALLOWED_HOSTS,
            setting=ALLOW_LIST,
        )
    except EndpointRefused as exc:
        raise ImproperlyConfigured(f"BEDSIDE_OIDC_ISSUER refused: {exc}") from exc


def unavailable_message(detail: str) -> str:
    return (
        f"The hospital sign-in service ({settings.BEDSIDE_OIDC_ISSUER}) is not answering "
        f"({detail}). Try again in a few minutes; if it stays down, an administrator can use "
        "the break-glass account."
    )


# --- Discovery and keys, cached per process -----------------------------------------------


@dataclass
class _Cached:
    issuer: str
    fetched_at: float
    value: Any


_lock = threading.Lock()
_configuration: _Cached | None = None
_jwks: _Cached | None = None
_last_problem: _Cached | None = None


def discovery_forget() -> None:
    """Drop what was cached (the next sign-in asks the provider again)."""
    global _configuration, _jwks, _last_problem
    with _lock:
        _configuration = _jwks = _last_problem = None


def _verify() -> bool | str:
    return settings.BEDSIDE_OIDC_CA_FILE or True


def _get_json(url: str) -> Any:
    """The discovery document: no redirect is followed (it could lead off the host checked
    on the premises), and no more than DISCOVERY_MAX_BYTES is read."""
    try:
        raw = get_bounded(
            url,
            timeout_s=settings.BEDSIDE_OIDC_TIMEOUT_S,
            max_bytes=DISCOVERY_MAX_BYTES,
            ca_file=settings.BEDSIDE_OIDC_CA_FILE,
        )
    except AnswerNotOk as exc:
        raise ProviderUnavailable(unavailable_message(f"HTTP {exc.status} from {url}")) from exc
    except AnswerTooLarge as exc:
        raise ProviderUnavailable(
            unavailable_message(f"{url} answered over {DISCOVERY_MAX_BYTES} bytes")
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(unavailable_message(type(exc).__name__)) from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ProviderUnavailable(unavailable_message(f"{url} did not answer JSON")) from exc


def _on_premises(url: str, what: str) -> None:
    try:
        check_model_endpoint(
            url, allowed_hosts=settings.BEDSIDE_OIDC_ALLOWED_HOSTS, setting=ALLOW_LIST
        )
    except EndpointRefused as exc:
        raise ProviderUnavailable(
            unavailable_message(f"its {what} is refused, nothing leaves the premises: {exc}")
        ) from exc


def _fetch_configuration(issuer: str) -> ProviderConfiguration:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    _on_premises(url, "discovery document")
    try:
        config = ProviderConfiguration.model_validate(_get_json(url))
    except ValidationError as exc:
        raise ProviderUnavailable(
            unavailable_message("its discovery document lacks required endpoints")
        ) from exc
    if config.issuer != issuer:
        raise ProviderUnavailable(
            unavailable_message(f"its discovery document names another issuer, {config.issuer}")
        )
    for what in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        endpoint = getattr(config, what)
        if endpoint:
            _on_premises(endpoint, what)
    if config.end_session_endpoint:
        _on_premises(config.end_session_endpoint, "end_session_endpoint")
    return config


def provider_configuration(*, refresh: bool = False) -> ProviderConfiguration:
    """The provider's discovery document, from the cache while it is fresh. Raises
    ``ProviderUnavailable`` (and remembers the problem for the sign-in page)."""
    global _configuration, _last_problem
    issuer = settings.BEDSIDE_OIDC_ISSUER
    now = time.monotonic()
    cached = _configuration
    if (
        not refresh
        and cached is not None
        and cached.issuer == issuer
        and now - cached.fetched_at < settings.BEDSIDE_OIDC_DISCOVERY_CACHE_S
    ):
        return cached.value
    try:
        config = _fetch_configuration(issuer)
    except ProviderUnavailable as exc:
        with _lock:
            _last_problem = _Cached(issuer, now, str(exc))
        raise
    with _lock:
        _configuration = _Cached(issuer, now, config)
        _last_problem = None
    return config


def recent_problem() -> str | None:
    """What went wrong the last time the provider was asked, if it has not answered since
    (shown on the sign-in page without asking the provider again on every page view)."""
    problem = _last_problem
    if problem is None or problem.issuer != settings.BEDSIDE_OIDC_ISSUER:
        return None
    return str(problem.value)


def provider_problem() -> str | None:
    """Readiness: None when the provider's discovery document can be read (or single
    sign-on is off), else why not."""
    if not sso_enabled():
        return None
    try:
        provider_configuration(refresh=True)
    except ProviderUnavailable as exc:
        return str(exc)
    return None


def _signing_key(kid: str | None) -> Any:
    """The provider's RS256 key with this ``kid`` (any, when the token names none). Its JWKS
    is cached like discovery, and fetched again early when it lacks the kid (the provider
    rotated its keys), through the fetcher the EHRs' keys use (``bedside.accounts.jwks``)."""
    global _jwks
    config = provider_configuration()
    cached = _jwks if _jwks is not None and _jwks.issuer == config.issuer else None
    keys: list[dict[str, Any]] = cached.value if cached is not None else []

    def matching() -> list[dict[str, Any]]:
        return [
            key
            for key in keys
            if key.get("kty") == "RSA"
            and key.get("use", "sig") == "sig"
            and (kid is None or key.get("kid") == kid)
        ]

    now = time.monotonic()
    age = None if cached is None else now - cached.fetched_at
    cache_s = settings.BEDSIDE_OIDC_DISCOVERY_CACHE_S
    if refetch_due(age_s=age, cache_s=cache_s, kid_known=bool(matching())):
        try:
            document = jwks_fetch(
                config.jwks_uri,
                allowed_hosts=settings.BEDSIDE_OIDC_ALLOWED_HOSTS,
                setting=ALLOW_LIST,
                timeout_s=settings.BEDSIDE_OIDC_TIMEOUT_S,
                ca_file=settings.BEDSIDE_OIDC_CA_FILE,
            )
        except JwksUnavailable as exc:
            raise ProviderUnavailable(unavailable_message(str(exc))) from exc
        keys = [key for key in document["keys"] if isinstance(key, dict)]
        with _lock:
            _jwks = _Cached(config.issuer, now, keys)
    for key in matching():
        return jwt.PyJWK(key, algorithm="RS256").key
    raise SignInRefused(f"ID token signed with a key the provider does not publish ({kid})")


def id_token_claims(token: str, *, nonce: str | None) -> dict[str, Any]:
    """The claims of an ID token from the configured provider, for this client and this
    sign-in attempt, or ``SignInRefused`` saying what was wrong with it."""
    config = provider_configuration()
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise SignInRefused("malformed ID token") from exc
    if header.get("alg") != "RS256":
        raise SignInRefused(f"ID token signed with {header.get('alg')!r}, not RS256")
    kid = header.get("kid")
    key = _signing_key(kid if isinstance(kid, str) else None)
    client_id = settings.BEDSIDE_OIDC_CLIENT_ID
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=config.issuer,
            leeway=CLOCK_SKEW_S,
            options={"require": ["iss", "aud", "exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise SignInRefused("expired ID token") from exc
    except jwt.InvalidSignatureError as exc:
        raise SignInRefused("ID token signature does not verify") from exc
    except jwt.InvalidAudienceError as exc:
        raise SignInRefused("ID token issued to another client (aud)") from exc
    except jwt.InvalidIssuerError as exc:
        raise SignInRefused("ID token from another issuer (iss)") from exc
    except jwt.InvalidTokenError as exc:
        raise SignInRefused(f"invalid ID token ({type(exc).__name__})") from exc
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise SignInRefused("ID token for several clients without this one as azp")
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), (nonce or "").encode()):
        raise SignInRefused("nonce mismatch")
    return claims


def groups_of(claims: dict[str, Any]) -> list[str]:
    """The groups claim (``BEDSIDE_OIDC_GROUPS_CLAIM``): a list of names or ids; one string
    is one group; anything else is no group."""
    value = claims.get(settings.BEDSIDE_OIDC_GROUPS_CLAIM)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value if isinstance(item, str | int)]
    return []


def username_of(claims: dict[str, Any]) -> str:
    name = claims.get("preferred_username") or claims.get("email") or claims["sub"]
    return str(name).strip()[:150]


def _actor(request: HttpRequest | None) -> Actor:
    source = actor_for(None, request).source_address if request is not None else None
    return Actor(
        label="system:single-sign-on",
        role="system",
        source_address=source,
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )


def sso_user_sign_in(*, claims: dict[str, Any], request: HttpRequest | None) -> Any:
    """The Bedside user of this provider's person (made at their first sign-in), with their
    roles replaced by those their groups give now, in one transaction.

    A user name already taken by another account (a local one, or another person of the
    provider) is refused, never merged: whoever the provider calls that name would
    otherwise sign in as that account, with its roles and history. If they are the same
    person, an administrator renames the local account (docs/operations.md)."""
    user_model = get_user_model()
    issuer = settings.BEDSIDE_OIDC_ISSUER
    subject = str(claims["sub"])
    username = username_of(claims)
    new_roles = roles_from_groups(groups_of(claims), role_groups())
    with transaction.atomic():
        identity = (
            SsoIdentity.objects.select_for_update()
            .select_related("user")
            .filter(issuer=issuer, subject=subject)
            .first()
        )
        if identity is None:
            if user_model.objects.filter(username__iexact=username).exists():
                raise SignInRefused(
                    f"user name {username!r} already belongs to another Bedside account",
                    f"Your hospital user name ({username}) already belongs to another Bedside "
                    "account, so you were not signed in. Ask IT to link your hospital "
                    "sign-in to it.",
                )
            user = user_model.objects.create_user(
                username=username, email=str(claims.get("email") or "")
            )
            identity = SsoIdentity.objects.create(user=user, issuer=issuer, subject=subject)
        user = identity.user
        if not user.is_active:
            raise SignInRefused(
                "account disabled",
                "Your Bedside account is disabled. Ask IT if you need access.",
            )
        source = _actor(request).source_address
        until = login_locked_until(username=user.get_username(), source_address=source)
        if until is not None:
            raise SignInRefused(
                "locked",
                "Too many failed sign-ins for this account. Ask an administrator if you need "
                "access sooner.",
            )
        user_roles_replace(
            user=user, new_roles=new_roles, method=SignInMethod.SSO, actor=_actor(request)
        )
        identity.last_sign_in_at = timezone.now()
        identity.save(update_fields=["last_sign_in_at"])
    return user


def library_setting(attr: str, *default: Any) -> Any:
    """The settings mozilla-django-oidc asks for, from Bedside's own (BEDSIDE_OIDC_*)."""
    values: dict[str, Any] = {
        "OIDC_RP_CLIENT_ID": settings.BEDSIDE_OIDC_CLIENT_ID,
        "OIDC_RP_CLIENT_SECRET": settings.BEDSIDE_OIDC_CLIENT_SECRET,
        "OIDC_RP_SCOPES": settings.BEDSIDE_OIDC_SCOPES,
        "OIDC_RP_SIGN_ALGO": "RS256",
        "OIDC_USE_PKCE": True,
        "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
        "OIDC_USE_NONCE": True,
        "OIDC_STORE_ID_TOKEN": True,  # the id_token_hint of single logout
        "OIDC_STORE_ACCESS_TOKEN": False,
        "OIDC_TIMEOUT": settings.BEDSIDE_OIDC_TIMEOUT_S,
        "OIDC_VERIFY_SSL": _verify(),
        "OIDC_PROXY": None,
        "OIDC_TOKEN_USE_BASIC_AUTH": False,
        "OIDC_ALLOW_UNSECURED_JWT": False,
        "OIDC_CREATE_USER": True,
        "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc-callback",
        "LOGIN_REDIRECT_URL": settings.LOGIN_REDIRECT_URL,
        "LOGIN_REDIRECT_URL_FAILURE": settings.LOGIN_URL,
    }
    if attr in values:
        return values[attr]
    if default:
        return default[0]
    raise ImproperlyConfigured(f"mozilla-django-oidc asked for {attr}, which Bedside does not set")


@dataclass
class SsoFailure:
    reason: str
    message: str
    unavailable: bool = False


class SsoBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Signs in the person the provider sent back with a code (the callback only: a
    password sign-in never reaches it)."""

    sign_in_method = SignInMethod.SSO
    get_settings = staticmethod(library_setting)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's: its endpoints are settings; here they come from discovery.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.BEDSIDE_OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.BEDSIDE_OIDC_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = "RS256"
        self.OIDC_RP_IDP_SIGN_KEY = None
        # The library's own key fetch is never used: ``verify_token`` is Bedside's, and the
        # provider's keys come through the one JWKS fetcher (``_signing_key``).
        self.OIDC_OP_JWKS_ENDPOINT = None
        self._claimed = ""

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        if request is None or "nonce" not in kwargs or not sso_enabled():
            return None
        self._claimed = ""
        failure: SsoFailure | None = None
        source = _actor(request).source_address
        if source_refused(
            source_address=source, method="sso", request_id=getattr(request, "request_id", "")
        ):
            request.bedside_sso_failure = SsoFailure(  # type: ignore[attr-defined]
                "throttled",
                "Too many failed sign-ins from your network address. Try again in a minute.",
            )
            sign_in_attempt_recorded()
            return None
        try:
            config = provider_configuration()
            self.OIDC_OP_TOKEN_ENDPOINT = config.token_endpoint
            self.OIDC_OP_USER_ENDPOINT = config.userinfo_endpoint
            user = super().authenticate(request, **kwargs)
        except ProviderUnavailable as exc:
            failure = SsoFailure("provider unreachable", str(exc), unavailable=True)
        except SignInRefused as exc:
            failure = SsoFailure(exc.reason, exc.message)
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            failure = SsoFailure(
                f"provider refused the code (HTTP {status})",
                SignInRefused("").message,
            )
        except requests.RequestException as exc:
            failure = SsoFailure(
                "provider unreachable",
                unavailable_message(type(exc).__name__),
                unavailable=True,
            )
        except SuspiciousOperation as exc:
            failure = SsoFailure(str(exc)[:200], SignInRefused("").message)
        else:
            if user is not None:
                return user
            failure = SsoFailure("no ID token", SignInRefused("").message)
        auth_failure_record(
            method="sso", reason=failure.reason, request=request, claimed=self._claimed
        )
        sign_in_attempt_recorded()  # Django's user_login_failed is not a second event
        request.bedside_sso_failure = failure  # type: ignore[attr-defined]
        return None

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        return id_token_claims(token, nonce=kwargs.get("nonce"))

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        """The ID token's claims, completed from the userinfo endpoint when there is one
        (its ``sub`` must be the token's)."""
        claims = dict(payload)
        self._claimed = username_of(claims)
        if self.OIDC_OP_USER_ENDPOINT:
            info = super().get_userinfo(access_token, id_token, payload)
            if not isinstance(info, dict) or info.get("sub") != payload["sub"]:
                raise SignInRefused("userinfo is about another person (sub)")
            claims.update(info)
            self._claimed = username_of(claims)
        return claims

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        claims = self.get_userinfo(access_token, id_token, payload)
        return sso_user_sign_in(claims=claims, request=self.request)


def single_logout_url(*, id_token: str, post_logout_redirect_uri: str) -> str | None:
    """Where to send a person signing out so the provider ends its session too (RP-initiated
    logout), or None when the provider offers none or cannot be asked now."""
    try:
        endpoint = provider_configuration().end_session_endpoint
    except ProviderUnavailable:
        return None
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "client_id": settings.BEDSIDE_OIDC_CLIENT_ID,
        }
    )
    return f"{endpoint}{'&' if urlsplit(endpoint).query else '?'}{query}"

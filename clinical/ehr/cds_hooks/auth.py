"""Who is calling: the EHR's signed JWT, checked against the registered EHR clients and their
public keys (``bedside.accounts.ehr_clients``), each token used once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone

from bedside.accounts.ehr_clients import ClientRefused, ehr_client_for, ehr_client_keys
from clinical.ehr.cds_hooks.errors import fail
from clinical.models import CdsTokenUse

ALGORITHMS = ["ES384", "RS384", "ES256", "RS256", "ES512", "RS512"]
# Clock skew allowed between the EHR and Bedside, on `exp`, `iat` and the lifetime below.
JWT_LEEWAY_S = 30
# CDS Hooks 2.0: the JWT's expiration SHOULD be no more than 5 minutes in the future.
JWT_MAX_LIFETIME_S = 300


def authenticate_ehr(authorization: str, audience: str) -> str:
    """The verified issuer of the request's JWT; raises ``HookError`` (401) otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise fail(401, ["header", "Authorization"], "a signed JWT is required (Bearer)")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise fail(401, ["header", "Authorization"], f"not a JWT: {exc}") from exc
    issuer = unverified.get("iss")
    client = ehr_client_for(issuer) if isinstance(issuer, str) else None
    if client is None or not isinstance(issuer, str):
        raise fail(401, ["header", "Authorization"], "this JWT's issuer is not allowed")
    try:
        keys = ehr_client_keys(client, header.get("kid"))
    except ClientRefused as exc:
        raise fail(401, ["header", "Authorization"], f"the EHR's keys: {exc}") from exc
    last_error: Exception | None = None
    for jwk in keys:
        try:
            claims = jwt.decode(
                token,
                key=jwt.PyJWK(jwk).key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuer,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
                leeway=JWT_LEEWAY_S,
            )
        except jwt.PyJWTError as exc:
            last_error = exc
            continue
        if int(claims["exp"]) > time.time() + JWT_MAX_LIFETIME_S + JWT_LEEWAY_S:
            # A long-lived token is a bearer credential for days if it leaks; and its jti
            # would have to be remembered as long.
            raise fail(
                401,
                ["header", "Authorization"],
                "JWT refused: its exp is more than 5 minutes ahead (CDS Hooks limits a "
                "token's lifetime)",
            )
        _use_once(issuer, str(claims["jti"]), int(claims["exp"]))
        return issuer
    reason = str(last_error) if last_error else "no key of this issuer matches the JWT's kid"
    raise fail(401, ["header", "Authorization"], f"JWT refused: {reason}")


def _use_once(issuer: str, jti: str, exp: int) -> None:
    """Refuse a replayed token: its ``jti`` is remembered until it expires."""
    now = timezone.now()
    CdsTokenUse.objects.filter(expires_at__lt=now - timedelta(seconds=JWT_LEEWAY_S)).delete()
    try:
        with transaction.atomic():
            CdsTokenUse.objects.create(
                issuer=issuer[:255],
                jti=jti[:255],
                expires_at=datetime.fromtimestamp(exp, tz=UTC),
            )
    except IntegrityError as exc:
        raise fail(401, ["header", "Authorization"], "this JWT was already used (jti)") from exc

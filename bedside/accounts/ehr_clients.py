"""The EHRs allowed to call CDS Hooks and their public keys: the registry (``EhrClient``),
seeded from ``BEDSIDE_CDS_HOOKS_CLIENTS``, with JWKS fetched from an EHR's JWKS URL (an
allowed host only, ``bedside.accounts.jwks``), cached, and fetched again when a token names
a key id not in the cache (the EHR rotated its keys)."""

from __future__ import annotations

from typing import Any

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, record
from bedside.accounts.jwks import JwksUnavailable, jwks_fetch, refetch_due, stale
from bedside.accounts.models import EhrClient

JWKS_ALLOW_LIST = "BEDSIDE_JWKS_ALLOWED_HOSTS"


class ClientRefused(ValueError):
    """An EHR client that cannot be registered, or keys that cannot be had."""


def jwks_check(jwks: Any) -> dict[str, Any]:
    """A JWKS (``{"keys": [...]}``) whose every key is a public key PyJWT can use."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientRefused('a JWKS is {"keys": [<public JWK>, ...]} with at least one key')
    for i, key in enumerate(jwks["keys"]):
        if not isinstance(key, dict) or "d" in key:
            raise ClientRefused(f"key {i} is not a public JWK")
        try:
            jwt.PyJWK(key)
        except jwt.PyJWTError as exc:
            raise ClientRefused(f"key {i} is not a usable JWK: {exc}") from exc
    return jwks


def _keys_fetch(url: str) -> dict[str, Any]:
    """The JWKS at ``url`` (an allowed host; bounded in time and size, no redirects), every
    key a public key PyJWT can use."""
    try:
        jwks = jwks_fetch(
            url, allowed_hosts=settings.BEDSIDE_JWKS_ALLOWED_HOSTS, setting=JWKS_ALLOW_LIST
        )
    except JwksUnavailable as exc:
        raise ClientRefused(str(exc)) from exc
    try:
        return jwks_check(jwks)
    except ClientRefused as exc:
        raise ClientRefused(f"JWKS URL did not answer a JWKS: {exc}") from exc


def ehr_client_add(
    *, issuer: str, actor: Actor, jwks: Any = None, jwks_url: str = "", source: str = "command"
) -> EhrClient:
    """Register an EHR (or re-enable and re-key one): its issuer and a JWKS or JWKS URL."""
    if bool(jwks) == bool(jwks_url):
        raise ClientRefused("give the EHR's JWKS or its JWKS URL (one of them)")
    if not issuer or len(issuer) > 255:
        raise ClientRefused("the issuer (the JWT's iss) is 1 to 255 characters")
    fetched_at = None
    if jwks_url:
        jwks = _keys_fetch(jwks_url)  # refused now rather than at the EHR's first call
        fetched_at = timezone.now()
    else:
        jwks = jwks_check(jwks)
    with transaction.atomic():
        client, created = EhrClient.objects.update_or_create(
            issuer=issuer,
            defaults={
                "jwks": jwks,
                "jwks_url": jwks_url,
                "jwks_fetched_at": fetched_at,
                "disabled_at": None,
                "source": source,
            },
        )
        record(
            actor=actor,
            action=Action.CREATE if created else Action.UPDATE,
            code="ehr_client.added" if created else "ehr_client.changed",
            object_type="ehr_client",
            object_id=str(client.pk),
            details={
                "issuer": issuer,
                "jwks_url": jwks_url,
                "kids": [k.get("kid") for k in jwks["keys"]],
                "source": source,
            },
        )
    return client


def ehr_client_disable(*, client: EhrClient, actor: Actor) -> bool:
    """Refuse the EHR's calls from now on. False if it already was disabled."""
    with transaction.atomic():
        done = EhrClient.objects.filter(pk=client.pk, disabled_at__isnull=True).update(
            disabled_at=timezone.now()
        )
        if done:
            record(
                actor=actor,
                action=Action.UPDATE,
                code="ehr_client.disabled",
                object_type="ehr_client",
                object_id=str(client.pk),
                details={"issuer": client.issuer},
            )
    client.refresh_from_db()
    return bool(done)


def ehr_client_for(issuer: str) -> EhrClient | None:
    """The enabled client of this issuer, seeded from ``BEDSIDE_CDS_HOOKS_CLIENTS`` the
    first time an issuer named there calls; None when unknown or disabled."""
    client = EhrClient.objects.filter(issuer=issuer).first()
    if client is None:
        seed = settings.BEDSIDE_CDS_HOOKS_CLIENTS.get(issuer)
        if seed is None:
            return None
        try:
            client = ehr_client_add(
                issuer=issuer,
                jwks=seed.get("jwks"),
                actor=Actor(label="BEDSIDE_CDS_HOOKS_CLIENTS", role="system"),
                source="setting",
            )
        except ClientRefused:
            return None
    return None if client.disabled_at else client


def ehr_client_keys(client: EhrClient, kid: str | None) -> list[dict[str, Any]]:
    """The client's keys that may have signed a token with this ``kid`` (all keys when the
    token names none). A JWKS URL's keys are cached for ``BEDSIDE_JWKS_CACHE_S`` and
    fetched again early when the kid is not among them (key rotation)."""

    def matching() -> list[dict[str, Any]]:
        keys = (client.jwks or {}).get("keys") or []
        return [k for k in keys if not kid or k.get("kid") in (None, kid)]

    if not client.jwks_url:
        return matching()
    now = timezone.now()
    fetched = client.jwks_fetched_at
    age = None if fetched is None else (now - fetched).total_seconds()
    cache_s = settings.BEDSIDE_JWKS_CACHE_S
    if refetch_due(age_s=age, cache_s=cache_s, kid_known=bool(matching())):
        try:
            jwks = _keys_fetch(client.jwks_url)
        except ClientRefused:
            if age is not None and stale(age_s=age, cache_s=cache_s):
                return matching()  # the EHR's JWKS host is down: the cached keys still hold
            raise
        EhrClient.objects.filter(pk=client.pk).update(jwks=jwks, jwks_fetched_at=now)
        client.jwks, client.jwks_fetched_at = jwks, now
    return matching()

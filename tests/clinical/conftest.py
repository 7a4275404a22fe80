"""Fixtures for the EHR integration tests: an EHR's JWT signing key that Bedside knows."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

EHR_ISSUER = "https://fhir-ehr.example.com/"


@pytest.fixture
def ehr_key(db: None, settings: Any) -> ec.EllipticCurvePrivateKey:
    """The EHR's signing key (ES384, as the spec's example); Bedside knows its public half."""
    private = ec.generate_private_key(ec.SECP384R1())
    settings.BEDSIDE_CDS_HOOKS_CLIENTS = ehr_clients(private)
    return private


def ehr_clients(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """BEDSIDE_CDS_HOOKS_CLIENTS naming the EHR whose JWTs ``key`` signs."""
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public |= {"kid": "example-kid", "alg": "ES384", "use": "sig"}
    return {EHR_ISSUER: {"jwks": {"keys": [public]}}}


def ehr_token(key: Any, audience: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {
        "iss": EHR_ISSUER,
        "aud": audience,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    } | claims
    return jwt.encode(payload, key, algorithm="ES384", headers={"kid": "example-kid"})

"""EHR clients of CDS Hooks managed at run time: added with a JWKS file or a JWKS URL (a
real HTTP server process here), disabled, seeded from BEDSIDE_CDS_HOOKS_CLIENTS; a JWKS
URL's keys cached and fetched again when a token names a new key id (rotation)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.models import AuditEvent
from bedside.accounts import jwks
from bedside.accounts.models import EhrClient
from tests.clinical.test_cds_hooks import PATIENT_VIEW, patient_view

ISSUER = "https://ehr.hospital.example/"


def jwks_of(*keys: tuple[str, ec.EllipticCurvePrivateKey]) -> dict[str, Any]:
    out = []
    for kid, key in keys:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        out.append(public | {"kid": kid, "alg": "ES384", "use": "sig"})
    return {"keys": out}


def hook(key: ec.EllipticCurvePrivateKey, kid: str, issuer: str = ISSUER) -> int:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": f"http://testserver{PATIENT_VIEW}",
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    token = jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid})
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    request = patient_view() | {"hookInstance": str(uuid.uuid4())}
    return int(client.post(PATIENT_VIEW, request, format="json").status_code)


def cds_client(*args: str) -> str:
    out = StringIO()
    call_command("cds_client", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_seed(db: None, settings: Any) -> None:
    settings.BEDSIDE_CDS_HOOKS_CLIENTS = {}


class JwksServer:
    """``python -m http.server`` serving a folder with ``jwks.json``: the EHR's key URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-u", "-m", "http.server", "0"),
                *("--bind", "127.0.0.1", "--directory", str(folder)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        port = re.search(r"port (\d+)", line)
        assert port, line
        self.url = f"http://127.0.0.1:{port.group(1)}/jwks.json"

    def publish(self, jwks: dict[str, Any]) -> None:
        (self.folder / "jwks.json").write_text(json.dumps(jwks))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def jwks_server(tmp_path: Path) -> Iterator[JwksServer]:
    server = JwksServer(tmp_path)
    yield server
    server.stop()


def test_an_ehr_added_with_a_jwks_file_may_call_at_once(no_seed: None, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    assert hook(key, "k1") == 401  # not registered yet
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(jwks_of(("k1", key))))
    assert "k1" in cds_client("add", "--issuer", ISSUER, "--jwks-file", str(jwks_file))
    assert hook(key, "k1") == 200
    assert AuditEvent.objects.filter(code="ehr_client.added").count() == 1
    assert "enabled\thttps://ehr.hospital.example/" in cds_client("list")


def test_a_disabled_ehr_is_refused_even_when_the_setting_names_it(ehr_key: Any) -> None:
    from tests.clinical.conftest import EHR_ISSUER

    assert hook(ehr_key, "example-kid", EHR_ISSUER) == 200  # seeded from the setting
    assert EhrClient.objects.get(issuer=EHR_ISSUER).source == "setting"
    cds_client("disable", "--issuer", EHR_ISSUER)
    assert hook(ehr_key, "example-kid", EHR_ISSUER) == 401
    assert "disabled" in cds_client("list")


def test_jwks_url_keys_are_fetched_cached_and_fetched_again_for_a_new_kid(
    no_seed: None, jwks_server: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "REFETCH_MIN_S", 0)
    old, new = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    jwks_server.publish(jwks_of(("2026-01", old)))
    cds_client("add", "--issuer", ISSUER, "--jwks-url", jwks_server.url)
    assert hook(old, "2026-01") == 200
    # The EHR rotates its keys: a token with the new kid makes Bedside fetch them again.
    jwks_server.publish(jwks_of(("2026-02", new)))
    assert hook(new, "2026-02") == 200
    kids = [k["kid"] for k in (EhrClient.objects.get().jwks or {})["keys"]]
    assert kids == ["2026-02"]
    # The cached keys hold while the EHR's key server is down.
    jwks_server.stop()
    assert hook(new, "2026-02") == 200
    # A kid the EHR never published is refused (it cannot be fetched now).
    assert hook(old, "2026-01") == 401


def test_a_jwks_url_on_a_public_address_is_refused(no_seed: None) -> None:
    with pytest.raises(CommandError, match="public address"):
        cds_client("add", "--issuer", ISSUER, "--jwks-url", "http://93.184.216.34/jwks.json")
    assert not EhrClient.objects.exists()


def test_a_private_key_or_a_broken_jwks_is_refused(no_seed: None, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key)) | {"kid": "k"}
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [private]}))
    with pytest.raises(CommandError, match="not a public JWK"):
        cds_client("add", "--issuer", ISSUER, "--jwks-file", str(jwks_file))
    jwks_file.write_text(json.dumps({"keys": []}))
    with pytest.raises(CommandError, match="at least one key"):
        cds_client("add", "--issuer", ISSUER, "--jwks-file", str(jwks_file))

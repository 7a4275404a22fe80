"""Patient data goes only to loopback, private or allow-listed model servers."""

from __future__ import annotations

import pytest

from bedside.hosts import EndpointRefused, check_model_endpoint


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8011/v1",
        "http://localhost:8000/v1",
        "http://10.2.3.4/v1",
        "http://192.168.1.5:8000/v1",
        "http://[::1]:8000/v1",
    ],
)
def test_on_premises_endpoints_are_accepted(url: str) -> None:
    check_model_endpoint(url, allowed_hosts=[])


@pytest.mark.parametrize("url", ["http://8.8.8.8/v1", "https://1.1.1.1/v1", "ftp://127.0.0.1/v1"])
def test_public_endpoints_are_refused(url: str) -> None:
    with pytest.raises(EndpointRefused):
        check_model_endpoint(url, allowed_hosts=[])


def test_unresolvable_host_is_refused_unless_allow_listed() -> None:
    url = "http://gpu-01.hospital.invalid/v1"
    with pytest.raises(EndpointRefused, match="does not resolve"):
        check_model_endpoint(url, allowed_hosts=[])
    check_model_endpoint(url, allowed_hosts=["gpu-01.hospital.invalid"])


def test_django_refuses_to_start_with_a_public_model_server(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    env = {**os.environ, "BEDSIDE_MODEL_BASE_URL": "http://8.8.8.8/v1"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "BEDSIDE_MODEL_BASE_URL refused" in result.stderr

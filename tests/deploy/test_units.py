"""The systemd units and the nginx site in deploy/ are checked by the tools that will load
them (systemd-analyze verify, nginx -t) and against the settings they must agree with.

The tools are required: `make install-deploy-tools` installs Debian's nginx; systemd-analyze
comes with systemd. A missing tool is a failure, not a skip."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = DEPLOY / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
SITE = DEPLOY / "nginx" / "bedside.conf"
SYSTEM_UNIT_DIRS = [Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")]


def tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    assert found, f"{name} is needed by these tests: run `make install-deploy-tools`"
    return found


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Key -> values of a unit file (continuation lines joined; keys may repeat)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values.setdefault(key.strip(), []).append(value.strip())
    return values


def systemd_root(tmp_path: Path, units: list[Path]) -> Path:
    """A file system root holding the system's own units, ours, and a stand-in for every
    program our units start (systemd-analyze checks that each one is executable)."""
    root = tmp_path / "root"
    system_units = next((d for d in SYSTEM_UNIT_DIRS if (d / "sysinit.target").exists()), None)
    assert system_units, f"systemd's own units are not in {SYSTEM_UNIT_DIRS} (package systemd)"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, root / "etc/systemd/system" / unit.name)
        for key, commands in unit_settings(unit).items():
            if not key.startswith("Exec"):
                continue
            for command in commands:
                program = root / command.lstrip("-@+!:").split()[0].lstrip("/")
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    return root


def verify(root: Path, unit_name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            tool("systemd-analyze"),
            "verify",
            "--man=no",
            "--generators=no",
            f"--root={root}",
            unit_name,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


UNIT_NAMES = [
    "bedside-web.service",
    "bedside-worker@routine.service",
    "bedside-worker@stat.service",
    "bedside-beat.service",
    "bedside-vllm.service",
    "bedside.target",
]


def test_units_verify_without_a_single_warning(tmp_path: Path) -> None:
    root = systemd_root(tmp_path, [*SERVICES, UNITS / "bedside.target"])
    for name in UNIT_NAMES:
        result = verify(root, name)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
        # Unknown keys and bad values are only warnings to systemd: we allow none.
        assert result.stdout + result.stderr == "", f"{name}: {result.stdout}{result.stderr}"


def test_the_verification_catches_a_misspelt_hardening_key(tmp_path: Path) -> None:
    broken = tmp_path / "bedside-web.service"
    broken.write_text(
        (UNITS / "bedside-web.service")
        .read_text()
        .replace("ProtectSystem=strict", "ProtectSystm=strict")
    )
    root = systemd_root(tmp_path, [broken])
    result = verify(root, "bedside-web.service")
    assert "Unknown key 'ProtectSystm'" in result.stdout + result.stderr


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_each_service_restarts_is_limited_and_hardened(unit: Path) -> None:
    values = unit_settings(unit)
    for key in ("User", "Restart", "MemoryMax", "LimitNOFILE", "TasksMax", "ReadWritePaths"):
        assert values.get(key), f"{unit.name} has no {key}="
    assert values["User"][0] not in ("root", "0")
    assert values["Restart"][0] in ("always", "on-failure")
    assert values["NoNewPrivileges"] == ["yes"]
    assert values["ProtectSystem"] == ["strict"]
    assert values["PrivateTmp"] == ["yes"]
    assert "/etc/bedside/bedside.env" in values["EnvironmentFile"]
    for command in values["ExecStart"]:
        assert command.startswith("/"), "systemd needs absolute program paths"


def test_web_and_workers_run_as_the_local_stack_runs_them() -> None:
    web = " ".join(unit_settings(UNITS / "bedside-web.service")["ExecStart"])
    assert "gunicorn bedside.wsgi" in web
    assert "--bind ${BEDSIDE_WEB_BIND}" in web
    worker = " ".join(unit_settings(UNITS / "bedside-worker@.service")["ExecStart"])
    assert "celery -A bedside worker" in worker
    assert "--pool threads" in worker
    assert "--queues ${BEDSIDE_WORKER_QUEUES}" in worker
    beat = " ".join(unit_settings(UNITS / "bedside-beat.service")["ExecStart"])
    assert "celery -A bedside beat" in beat


def test_a_worker_instance_without_its_own_queues_takes_stat_cases_first() -> None:
    """Stat and urgent cases go to `cases.stat` by default: a worker instance started with
    no worker-<instance>.env must consume it, ahead of the routine queue."""
    environment = " ".join(unit_settings(UNITS / "bedside-worker@.service")["Environment"])
    assert "BEDSIDE_WORKER_QUEUES=cases.stat,cases " in f"{environment} "


def test_model_server_unit_is_offline_and_serves_an_r1_distill_from_a_local_path() -> None:
    values = unit_settings(UNITS / "bedside-vllm.service")
    command = " ".join(values["ExecStart"])
    assert command.startswith("/opt/vllm/venv/bin/vllm serve ${BEDSIDE_VLLM_MODEL_PATH} ")
    assert "--reasoning-parser deepseek_r1" in command
    assert "--served-model-name ${BEDSIDE_MODEL_NAME}" in command
    assert '"temperature": 0.6' in command and '"top_p": 0.95' in command
    environment = " ".join(values["Environment"])
    for flag in (
        "HF_HUB_OFFLINE=1",
        "TRANSFORMERS_OFFLINE=1",
        "VLLM_NO_USAGE_STATS=1",
        "DO_NOT_TRACK=1",
    ):
        assert flag in environment
    model_path = next(
        v.split("=", 1)[1]
        for line in values["Environment"]
        for v in line.split()
        if v.startswith("BEDSIDE_VLLM_MODEL_PATH=")
    )
    assert model_path.startswith("/")
    # The offline switches are set after the env file, so it cannot undo them.
    text = (UNITS / "bedside-vllm.service").read_text()
    assert text.index("EnvironmentFile=") < text.index("HF_HUB_OFFLINE=1")


def nginx_size(value: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    value = value.lower()
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_access_logs_name_the_path_never_the_query_string_nor_the_referer() -> None:
    """FHIR intake takes the chief complaint and the question as query parameters: neither
    nginx's access log nor gunicorn's may write them (tests/faults/ checks gunicorn's output
    with canary values)."""
    from bedside import gunicorn_conf
    from devtools import localstack

    site = SITE.read_text()
    log_format = re.search(r"log_format bedside_no_query (.*?);", site, re.S)
    assert log_format and "$uri" in log_format.group(1)
    assert not re.search(
        r"\$(request|request_uri|args|query_string|http_referer)\b", log_format.group(1)
    )
    assert re.search(r"access_log \S+ bedside_no_query;", site)
    assert "%(U)s" in gunicorn_conf.access_log_format
    assert not re.search(r"%\((r|q|f)\)s", gunicorn_conf.access_log_format)
    web = " ".join(unit_settings(UNITS / "bedside-web.service")["ExecStart"])
    assert "--config python:bedside.gunicorn_conf" in web
    assert "python:bedside.gunicorn_conf" in localstack.web_command()


def test_nginx_body_limit_is_bedsides_body_limit() -> None:
    site = SITE.read_text()
    match = re.search(r"client_max_body_size\s+(\w+);", site)
    assert match
    assert nginx_size(match.group(1)) == settings.BEDSIDE_MAX_BODY_BYTES
    # The record routes (case intake, CDS Hooks calls) take BEDSIDE_MAX_FHIR_BODY_BYTES.
    for route in ("location = /api/v1/cases/ {", "location ~ ^/cds-services/[^/]+$ {"):
        block = site.split(route, 1)[1].split("}", 1)[0]
        size = re.search(r"client_max_body_size\s+(\w+);", block)
        assert size and nginx_size(size.group(1)) == settings.BEDSIDE_MAX_FHIR_BODY_BYTES
    example = (DEPLOY / "bedside.env.example").read_text()
    assert f"BEDSIDE_MAX_BODY_BYTES={settings.BEDSIDE_MAX_BODY_BYTES}" in example


def test_nginx_site_forwards_the_scheme_and_sets_hsts_and_long_poll_timeouts() -> None:
    site = SITE.read_text()
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    assert re.search(r'add_header Strict-Transport-Security "max-age=\d+', site)
    read_timeout = re.search(r"proxy_read_timeout\s+(\d+)s;", site)
    assert read_timeout
    gunicorn = " ".join(unit_settings(UNITS / "bedside-web.service")["ExecStart"])
    gunicorn_timeout = re.search(r"--timeout (\d+)", gunicorn)
    assert gunicorn_timeout
    assert int(read_timeout.group(1)) > int(gunicorn_timeout.group(1))


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "bedside.crt", folder / "bedside.key"
    subprocess.run(
        [
            tool("openssl"),
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=bedside.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def nginx_test(tmp_path: Path, site_text: str) -> subprocess.CompletedProcess[str]:
    cert, key = self_signed_certificate(tmp_path)
    site = (
        site_text.replace("/etc/bedside/tls/bedside.crt", str(cert))
        .replace("/etc/bedside/tls/bedside.key", str(key))
        .replace("/var/log/nginx/", f"{tmp_path}/")
    )
    (tmp_path / "bedside.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    access_log {tmp_path}/access.log;
    include {tmp_path}/bedside.conf;
}}
"""
    )
    return subprocess.run(
        [tool("nginx"), "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nginx_accepts_the_site(tmp_path: Path) -> None:
    result = nginx_test(tmp_path, SITE.read_text())
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_check_catches_a_broken_site(tmp_path: Path) -> None:
    result = nginx_test(
        tmp_path, SITE.read_text().replace("proxy_read_timeout", "proxy_read_tmout")
    )
    assert result.returncode != 0
    assert "proxy_read_tmout" in result.stderr

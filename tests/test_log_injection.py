"""Log injection (issue 17, finding 10): a request path with CR/LF in it, such as
``/cases/%0d%0a127.0.0.1 - - FORGED``, writes one log line with the characters escaped,
never a forged second line: in gunicorn's access log and in Bedside's own (Django's) lines."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from gunicorn.config import Config

from bedside import gunicorn_conf

FORGED_PATH = "/cases/\r\n127.0.0.1 - - FORGED"


def _access_log_lines(tmp_path: Path, environ: dict[str, str]) -> list[str]:
    """One access-log entry written by gunicorn's logger as Bedside configures it."""
    cfg = Config()
    for name in ("access_log_format", "logger_class"):
        cfg.set(name, getattr(gunicorn_conf, name))
    log_file = tmp_path / "access.log"
    cfg.set("accesslog", str(log_file))
    logger = cfg.logger_class(cfg)
    response = SimpleNamespace(status="404 Not Found", sent=0, headers=[("X-Request-ID", "r1")])
    request = SimpleNamespace(headers=[("USER-AGENT", environ["HTTP_USER_AGENT"])])
    base = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.9"}
    logger.access(response, request, {**base, **environ}, dt.timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    return log_file.read_text().splitlines()


def test_a_crlf_in_the_path_is_one_escaped_access_log_line(tmp_path: Path) -> None:
    lines = _access_log_lines(
        tmp_path,
        {
            "PATH_INFO": FORGED_PATH,
            "RAW_URI": "/cases/%0d%0a127.0.0.1%20-%20-%20FORGED",
            "HTTP_USER_AGENT": "curl\r\n10.0.0.1 - - FORGED-TOO\x1b[2J",
        },
    )
    assert len(lines) == 1, lines
    assert '"GET /cases/\\r\\n127.0.0.1 - - FORGED HTTP/1.1" 404' in lines[0]
    assert '"curl\\r\\n10.0.0.1 - - FORGED-TOO\\x1b[2J"' in lines[0]


def test_the_access_log_names_the_client_behind_a_trusted_proxy(
    tmp_path: Path, settings: Any
) -> None:
    # Issue 17, finding 6: behind nginx every line said 127.0.0.1.
    settings.BEDSIDE_TRUSTED_PROXIES = ["127.0.0.1"]
    proxied = {"PATH_INFO": "/", "RAW_URI": "/", "HTTP_USER_AGENT": "x", "REMOTE_ADDR": "127.0.0.1"}
    [line] = _access_log_lines(tmp_path, {**proxied, "HTTP_X_FORWARDED_FOR": "10.1.2.3"})
    assert line.startswith("10.1.2.3 "), line
    # From a peer that is not a trusted proxy the header is anyone's words: the peer is named.
    direct = {**proxied, "REMOTE_ADDR": "10.0.0.9", "HTTP_X_FORWARDED_FOR": "10.6.6.6"}
    (tmp_path / "direct").mkdir()
    [line] = _access_log_lines(tmp_path / "direct", direct)
    assert line.startswith("10.0.0.9 "), line


def _console_formatter() -> logging.Formatter:
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    assert handler.formatter is not None
    return handler.formatter


def test_a_crlf_in_a_logged_path_is_escaped_in_bedsides_own_lines(
    db: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        response = Client().get("/cases/%0d%0a127.0.0.1%20-%20-%20FORGED")
    assert response.status_code == 404
    formatter = _console_formatter()
    written = [formatter.format(record) for record in caplog.records]
    assert any("FORGED" in line for line in written), written
    assert all("\r" not in line and "\n" not in line for line in written), written


def test_control_characters_in_any_plain_log_message_are_escaped() -> None:
    record = logging.LogRecord(
        "bedside", logging.WARNING, __file__, 1, "refused %s\u2028x", ("a\r\nb\x1b\x00",), None
    )
    record.request_id = "-"
    line = _console_formatter().format(record)
    assert line.endswith("refused a\\r\\nb\\x1b\\x00\\u2028x")

"""Request ids: on every log line written during a request, in the response and gunicorn's
access log, and carried with the tasks a request sends to the worker's log lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory

from bedside import gunicorn_conf
from bedside.celery import REQUEST_ID_HEADER
from bedside.logformat import JsonFormatter, RequestIdFilter, current_request_id
from bedside.middleware import RequestIdMiddleware

log = logging.getLogger("reasoning")


class Collect(logging.Handler):
    """Records as a handler configured by settings.LOGGING sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(RequestIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    log.addHandler(handler)
    try:
        yield handler
    finally:
        log.removeHandler(handler)


def test_a_log_line_written_during_a_request_carries_its_id(collected: Collect) -> None:
    def view(request: HttpRequest) -> HttpResponse:
        log.warning("model server %s out", "gpu-01")
        return HttpResponse()

    middleware = RequestIdMiddleware(view)
    response = middleware(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-7"))
    generated = middleware(RequestFactory().get("/"))
    log.warning("after the requests")

    first, second, after = collected.records
    assert first.request_id == "req-7" == response["X-Request-ID"]  # type: ignore[attr-defined]
    assert second.request_id == generated["X-Request-ID"] != "req-7"  # type: ignore[attr-defined]
    assert after.request_id == "-"  # type: ignore[attr-defined]
    assert current_request_id.get() is None

    plain = logging.Formatter(logging_config()["formatters"]["plain"]["format"])
    assert "[req-7] model server gpu-01 out" in plain.format(first)
    assert json.loads(JsonFormatter().format(first))["request_id"] == "req-7"
    assert "request_id" not in json.loads(JsonFormatter().format(after))


def test_the_console_handler_adds_the_request_id_in_both_formats() -> None:
    console = logging_config()["handlers"]["console"]
    assert "request_id" in console["filters"]
    assert logging_config()["filters"]["request_id"]["()"] == "bedside.logformat.RequestIdFilter"
    assert "%(request_id)s" in logging_config()["formatters"]["plain"]["format"]


def test_every_response_and_the_access_log_carry_the_id_bedside_answered_with(
    db: None,
) -> None:
    client = Client()
    made = client.get("/healthz")
    assert len(made["X-Request-ID"]) == 32
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-1")["X-Request-ID"] == "lb-1"
    # An id that could forge log lines is replaced, not echoed.
    assert client.get("/healthz", HTTP_X_REQUEST_ID="a b\n")["X-Request-ID"] != "a b\n"
    # gunicorn writes the response's header, so also the ids Bedside made itself.
    assert "%({x-request-id}o)s" in gunicorn_conf.access_log_format
    assert "%({x-request-id}i)s" not in gunicorn_conf.access_log_format


def test_a_task_sent_during_a_request_logs_with_that_requests_id(collected: Collect) -> None:
    # The signals are Celery's, for every app: an in-memory broker keeps the message here.
    app = Celery("request-id-test", broker="memory://")
    app.conf.task_serializer = "json"

    @app.task(name="tests.log_something")
    def log_something() -> None:
        log.warning("working on the case")

    published: list[dict[str, str]] = []

    def capture(headers: dict[str, object] | None = None, **_: object) -> None:
        published.append({key: str(value) for key, value in (headers or {}).items()})

    from celery import signals

    signals.before_task_publish.connect(capture, weak=False)
    try:

        def view(request: HttpRequest) -> HttpResponse:
            log_something.delay()
            return HttpResponse()

        RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-9"))
        log_something.delay()  # outside any request: no id to carry
    finally:
        signals.before_task_publish.disconnect(capture)

    assert published[0][REQUEST_ID_HEADER] == "req-9"
    assert REQUEST_ID_HEADER not in published[1]

    # The worker's side: the id from the message's headers, for that task only.
    log_something.apply(headers={REQUEST_ID_HEADER: published[0][REQUEST_ID_HEADER]})
    log_something.apply()
    in_task, in_task_without = collected.records
    assert in_task.request_id == "req-9"  # type: ignore[attr-defined]
    assert in_task_without.request_id == "-"  # type: ignore[attr-defined]
    assert current_request_id.get() is None


def logging_config() -> dict[str, Any]:
    config: dict[str, Any] = settings.LOGGING
    return config

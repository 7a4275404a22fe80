"""Several model servers: requests spread over those answering, a server that stops is
taken out without losing a case, and it is asked again after its cool-down. Two fake
OpenAI-compatible servers over real HTTP stand in for two GPU hosts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from clinical import lifecycle
from clinical.models import Case, CaseStatus
from reasoning import services
from reasoning.client import ModelUnavailable
from reasoning.pool import ModelPool
from tests.factories import submitted_case
from tests.fakes import FakeModelServer

MESSAGES = [{"role": "user", "content": "ping"}]


@pytest.fixture
def two_servers() -> Iterator[list[FakeModelServer]]:
    servers = [FakeModelServer(model="fake-model").start() for _ in range(2)]
    yield servers
    for server in servers:
        if server.thread.is_alive():
            server.stop()


class Clock:
    """Monotonic time that a test can move forward past a cool-down."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def test_requests_alternate_over_two_idle_servers(two_servers: list[FakeModelServer]) -> None:
    pool = ModelPool([s.base_url for s in two_servers], "fake-model")
    for _ in range(10):
        pool.chat(messages=MESSAGES)
    assert [len(s.requests) for s in two_servers] == [5, 5]


def test_a_busy_server_gets_no_request_while_the_other_has_fewer_in_flight(
    two_servers: list[FakeModelServer],
) -> None:
    busy, idle = two_servers
    busy.gate = threading.Event()
    pool = ModelPool([busy.base_url, idle.base_url], "fake-model")
    held = threading.Thread(target=pool.chat, kwargs={"messages": MESSAGES})
    held.start()  # the first request goes to the first server, and stays there
    deadline = time.monotonic() + 10
    while not busy.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(busy.requests) == 1
    for _ in range(4):
        pool.chat(messages=MESSAGES)
    assert len(idle.requests) == 4
    assert len(busy.requests) == 1
    busy.gate.set()
    held.join(timeout=10)
    assert pool.status()[0]["in_flight"] == 0


def test_a_stopped_server_is_taken_out_then_asked_again_after_its_cool_down(
    two_servers: list[FakeModelServer],
) -> None:
    first, second = two_servers
    clock = Clock()
    pool = ModelPool([first.base_url, second.base_url], "fake-model", cooldown_s=30, clock=clock)
    port = first.server.server_address[1]
    first.stop()

    for _ in range(4):
        pool.chat(messages=MESSAGES)  # none of them fails: the second server answers
    assert len(second.requests) == 4
    assert pool.status()[0]["in_service"] is False
    assert "unreachable" in pool.status()[0]["reason"]

    back = FakeModelServer(model="fake-model", port=port).start()
    try:
        for _ in range(2):
            pool.chat(messages=MESSAGES)
        assert back.requests == [] and back.gets == []  # still cooling down: left alone

        clock.offset += 31
        for _ in range(4):
            pool.chat(messages=MESSAGES)
        assert back.gets == ["/v1/models"]  # the health check that put it back
        assert len(back.requests) == 2
        assert pool.status()[0]["in_service"] is True
    finally:
        back.stop()


def test_a_server_dying_during_a_request_hands_it_to_the_other(
    two_servers: list[FakeModelServer],
) -> None:
    dying, healthy = two_servers
    dying.drop_requests = True
    pool = ModelPool([dying.base_url, healthy.base_url], "fake-model")
    result = pool.chat(messages=MESSAGES)  # first in turn: the dying one, then the other
    assert result.completion.choices
    assert len(dying.requests) == 1 and len(healthy.requests) == 1
    assert pool.status()[0]["in_service"] is False
    assert "RemoteProtocolError" in pool.status()[0]["reason"]


def test_no_server_answering_is_model_unavailable_with_each_reason() -> None:
    pool = ModelPool(
        ["http://127.0.0.1:9/v1", "http://127.0.0.1:7/v1"], "fake-model", max_retries=0
    )
    with pytest.raises(ModelUnavailable, match="unreachable"):
        pool.chat(messages=MESSAGES)
    assert [s["in_service"] for s in pool.status()] == [False, False]


def test_every_url_of_a_pool_must_be_on_the_premises(settings: Any) -> None:
    from django.apps import apps

    settings.BEDSIDE_MODEL_BASE_URL = "http://127.0.0.1:8000/v1, http://8.8.8.8/v1"
    with pytest.raises(ImproperlyConfigured, match=r"8\.8\.8\.8"):
        apps.get_app_config("reasoning").ready()


def submit(alice: User, count: int) -> list[Case]:
    return [submitted_case(alice) for _ in range(count)]


def run_in_thread(case: Case) -> lifecycle.RunResult:
    try:
        return lifecycle.case_run(case_id=case.id)
    finally:
        connection.close()  # each thread's own connection, or the test database stays in use


def test_cases_survive_a_model_server_stopping_mid_run(
    transactional_db: None, alice: User, two_servers: list[FakeModelServer], settings: Any
) -> None:
    first, second = two_servers
    settings.BEDSIDE_MODEL_BASE_URL = f"{first.base_url},{second.base_url}"
    settings.BEDSIDE_MODEL_NAME = "fake-model"
    services.model_client.cache_clear()
    services._served_model_revision.cache_clear()
    try:
        cases = submit(alice, 12)
        with ThreadPoolExecutor(max_workers=4) as threads:  # a worker's threads
            early = list(threads.map(run_in_thread, cases[:6]))
            first.stop()
            late = list(threads.map(run_in_thread, cases[6:]))
        assert {r.status for r in early + late} == {CaseStatus.COMPLETED}
        statuses = set(Case.objects.filter(id__in=[c.id for c in cases]).values_list("status"))
        assert statuses == {(CaseStatus.COMPLETED,)}
        # Both servers took cases before the stop; only the second after it.
        assert len(first.requests) > 0 and len(second.requests) > 0
        assert len(first.requests) + len(second.requests) == 12
        assert services.model_client().status()[0]["in_service"] is False
    finally:
        services.model_client.cache_clear()
        services._served_model_revision.cache_clear()

"""Stat cases are published to the stat queue by every sender (intake and the sweeper);
routine and urgent ones to the routine queue. Read straight from the broker's lists."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from bedside.celery import app as celery_app
from clinical import routing
from clinical import services as clinical_services
from clinical import tasks as clinical_tasks
from clinical.models import Case
from clinical.schemas import CaseInput
from tests.factories import TEST_ACTOR, load_case


@pytest.fixture
def waiting(queues: tuple[str, str]) -> Iterator[Any]:
    """How many tasks wait on a queue of the (Redis) broker; the queues are emptied after."""
    with celery_app.connection_for_write() as connection:
        client = connection.default_channel.client

        def count(queue: str) -> int:
            return int(client.llen(queue))

        yield count
        client.delete(*queues)


def submit(alice: User, priority: str) -> Case:
    data = {**load_case(), "priority": priority}
    return clinical_services.case_submit(
        case_input=CaseInput.model_validate(data), actor=TEST_ACTOR, submitted_by=alice
    )


def test_stat_cases_are_published_to_the_stat_queue_by_intake_and_sweeper(
    alice: User, queues: tuple[str, str], waiting: Any
) -> None:
    routine_queue, stat_queue = queues
    stat = submit(alice, "stat")
    submit(alice, "urgent")
    submit(alice, "routine")
    assert (waiting(stat_queue), waiting(routine_queue)) == (1, 2)

    Case.objects.filter(id=stat.id).update(updated_at=timezone.now() - timedelta(hours=1))
    assert clinical_tasks.cases_resend_stale(older_than_s=300) == [stat.id]
    assert (waiting(stat_queue), waiting(routine_queue)) == (2, 2)


def test_without_a_stat_queue_the_router_asks_nothing(settings: Any) -> None:
    settings.BEDSIDE_STAT_QUEUE = ""
    # No database access is allowed in this test: a lookup would raise.
    assert routing.route_case_task(routing.RUN_CASE, ["a-case-id"], {}, {}) is None
    settings.BEDSIDE_STAT_QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
    assert routing.route_case_task(routing.RUN_CASE, ["a-case-id"], {}, {}) is None


def test_other_tasks_are_not_routed(settings: Any) -> None:
    settings.BEDSIDE_STAT_QUEUE = "cases.stat"
    assert routing.route_case_task("reasoning.resend_stale_cases", [], {}, {}) is None

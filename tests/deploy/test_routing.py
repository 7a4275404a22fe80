"""Stat and urgent cases are published to the stat queue by every sender (intake and the
sweeper); routine ones to the routine queue. Read straight from the broker's lists."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from bedside import paths
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


def test_stat_and_urgent_cases_are_published_to_the_stat_queue_by_intake_and_sweeper(
    alice: User, queues: tuple[str, str], waiting: Any
) -> None:
    routine_queue, stat_queue = queues
    stat = submit(alice, "stat")
    submit(alice, "urgent")
    submit(alice, "routine")
    submit(alice, "routine")
    assert (waiting(stat_queue), waiting(routine_queue)) == (2, 2)

    Case.objects.filter(id=stat.id).update(updated_at=timezone.now() - timedelta(hours=1))
    assert clinical_tasks.cases_resend_stale(older_than_s=300) == [stat.id]
    assert (waiting(stat_queue), waiting(routine_queue)) == (3, 2)


def test_the_stat_queue_is_on_by_default_for_stat_and_urgent_cases() -> None:
    """Read from a fresh process with none of the settings given, as `make run` starts."""
    env = {k: v for k, v in os.environ.items() if k not in ("BEDSIDE_STAT_QUEUE", "BEDSIDE_QUEUE")}
    env.pop("BEDSIDE_STAT_PRIORITIES", None)
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.BEDSIDE_STAT_QUEUE, ','.join(s.BEDSIDE_STAT_PRIORITIES), "
        "[q.name for q in s.CELERY_TASK_QUEUES])"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**env, "DJANGO_SETTINGS_MODULE": "bedside.settings"},
        cwd=paths.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split("\n")[-2] == "cases.stat stat,urgent ['cases.stat', 'cases']"


def test_without_a_stat_queue_the_router_asks_nothing(settings: Any) -> None:
    settings.BEDSIDE_STAT_QUEUE = ""
    # No database access is allowed in this test: a lookup would raise.
    assert routing.route_case_task(routing.RUN_CASE, ["a-case-id"], {}, {}) is None
    settings.BEDSIDE_STAT_QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
    assert routing.route_case_task(routing.RUN_CASE, ["a-case-id"], {}, {}) is None


def test_other_tasks_are_not_routed(settings: Any) -> None:
    settings.BEDSIDE_STAT_QUEUE = "cases.stat"
    assert routing.route_case_task("reasoning.resend_stale_cases", [], {}, {}) is None

"""A case's task is sent only once its row is committed: a submission rolled back sends
nothing to the broker, a committed one sends exactly one message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from bedside.celery import app as celery_app
from clinical.models import Case
from clinical.schemas import CaseInput
from clinical.services import case_submit
from tests.factories import TEST_ACTOR, load_case


@pytest.fixture
def private_queue(transactional_db: None, settings: Any) -> Iterator[str]:
    # The sample case is urgent, and urgent cases go to the stat queue by default: off here,
    # so that every case's task lands on this one private queue.
    settings.BEDSIDE_STAT_QUEUE = ""
    queue = f"faults-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    yield queue
    celery_app.conf.task_default_queue = previous
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


def waiting(queue: str) -> int:
    with celery_app.connection_for_write() as conn:
        return int(conn.default_channel.queue_declare(queue=queue, passive=False).message_count)


def test_rolled_back_submission_sends_no_task_and_a_committed_one_sends_one(
    private_queue: str, alice: User
) -> None:
    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        case_submit(
            case_input=CaseInput.model_validate(load_case()), actor=TEST_ACTOR, submitted_by=alice
        )
        raise Abandoned
    assert Case.objects.count() == 0
    assert waiting(private_queue) == 0

    case_submit(
        case_input=CaseInput.model_validate(load_case()), actor=TEST_ACTOR, submitted_by=alice
    )
    assert Case.objects.count() == 1
    assert waiting(private_queue) == 1

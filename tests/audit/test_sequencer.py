"""The chain's sequencer (issue 20): writers append unlinked events without waiting for each
other, and ``chain_pending`` links what has committed, in commit order."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from audit.models import Action, AuditEvent
from audit.services import SYSTEM, chain_pending, chain_verify, record
from audit.tasks import chain_pending_task


def _linked(event_id: int) -> AuditEvent:
    return AuditEvent.objects.get(id=event_id)


@pytest.mark.django_db(transaction=True)
def test_an_open_transaction_holds_back_no_writer_and_the_chain_follows_commit_order() -> None:
    written = threading.Event()
    may_commit = threading.Event()
    early: list[int] = []

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                early.append(record(actor=SYSTEM, action=Action.EXECUTE, code="test.slow").id)
                written.set()
                may_commit.wait()
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        written.wait()
        with connection.cursor() as cursor:
            # Were the chain still locked by the slow writer's open transaction, this write
            # would wait for it (forever, here): it fails instead.
            cursor.execute("SET lock_timeout = '5s'")
        late_id = record(actor=SYSTEM, action=Action.EXECUTE, code="test.quick").id
        # The slow writer has not committed: the sequencer cannot see its event.
        assert chain_pending().chained == 1
        assert not AuditEvent.objects.filter(id=early[0]).exists()
    finally:
        may_commit.set()
        thread.join()
    assert chain_pending().chained == 1
    slow, quick = _linked(early[0]), _linked(late_id)
    assert slow.id < quick.id  # written first...
    assert quick.chain_position is not None and slow.chain_position is not None
    assert slow.chain_position == quick.chain_position + 1  # ...committed, and linked, second
    assert slow.prev_hash == quick.hash
    report = chain_verify()
    assert report.ok and report.events_checked == 2 and report.head_id == slow.id


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_never_enters_the_chain() -> None:
    first = record(actor=SYSTEM, action=Action.EXECUTE, code="test.kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=SYSTEM, action=Action.EXECUTE, code="test.rolled_back")
        raise RuntimeError
    last = record(actor=SYSTEM, action=Action.EXECUTE, code="test.kept")
    assert chain_pending().chained == 2
    kept = list(AuditEvent.objects.order_by("chain_position"))
    assert [e.id for e in kept] == [first.id, last.id]
    assert [e.chain_position for e in kept] == [1, 2]
    assert kept[1].prev_hash == kept[0].hash
    assert chain_verify().ok


def test_every_event_written_is_linked_by_the_next_pass_and_only_once(db: None) -> None:
    ids = [record(actor=SYSTEM, action=Action.READ, code=f"test.{i}").id for i in range(5)]
    assert AuditEvent.objects.filter(id__in=ids, chain_position__isnull=True).count() == 5
    assert chain_pending().chained == 5
    assert chain_pending().chained == 0
    assert not AuditEvent.objects.filter(chain_position__isnull=True).exists()


def test_a_pass_links_in_batches_until_nothing_is_left(db: None) -> None:
    for i in range(7):
        record(actor=SYSTEM, action=Action.READ, code=f"test.{i}")
    assert chain_pending(batch=3).chained == 7
    assert chain_verify().events_checked == 7


def test_the_beat_task_links_what_has_committed(db: None) -> None:
    from django.conf import settings

    record(actor=SYSTEM, action=Action.READ, code="test.beat")
    assert chain_pending_task() == 1
    schedule = settings.CELERY_BEAT_SCHEDULE["link-audit-events"]
    assert schedule["task"] == chain_pending_task.name


@pytest.mark.parametrize(
    "change",
    [
        "code = 'test.edited'",  # an unlinked event's content
        "hash = 'x', prev_hash = 'y', chain_position = 99, code = 'test.edited'",  # ...with links
        "hash = 'x'",  # half a link
    ],
)
def test_the_database_lets_through_linking_and_nothing_else(db: None, change: str) -> None:
    event = record(actor=SYSTEM, action=Action.READ, code="test.unlinked")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE audit_auditevent SET {change} WHERE id = %s",  # noqa: S608 (ours)
            [event.id],
        )
    chain_pending()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):  # a linked event is never linked again
        cursor.execute(
            "UPDATE audit_auditevent SET hash = 'x', prev_hash = 'y', chain_position = 99 "
            "WHERE id = %s",
            [event.id],
        )
    assert chain_verify().ok

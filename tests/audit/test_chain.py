"""Each event is chained to the one before; an edit anywhere is detected and named."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from audit.models import Action, AuditEvent
from audit.services import GENESIS_HASH, SYSTEM, chain_pending, record, verify_chain


def _linked(events: list[AuditEvent]) -> list[AuditEvent]:
    """The events as the chain holds them once the sequencer linked them (tampering
    before that is an edit of a row not written yet: the chain guards linked events)."""
    chain_pending()
    return [AuditEvent.objects.get(id=event.id) for event in events]


def test_events_chain_from_genesis(db: None) -> None:
    first, second = _linked(
        [
            record(actor=SYSTEM, action=Action.EXECUTE, code="run.started", details={"attempt": 1}),
            record(actor=SYSTEM, action=Action.EXECUTE, code="run.completed"),
        ]
    )
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert verify_chain() is None


def test_edited_event_is_named(db: None) -> None:
    events = _linked(
        [record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}") for i in range(4)]
    )
    with connection.cursor() as cursor:
        # The tables' owner or a superuser switching the append-only triggers off (rolled
        # back with the test's transaction).
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
        cursor.execute(
            "UPDATE audit_auditevent SET code = 'tampered' WHERE id = %s", [events[2].id]
        )
    broken = verify_chain()
    assert broken is not None and broken.id == events[2].id


def test_removed_event_is_named(db: None) -> None:
    events = _linked(
        [record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}") for i in range(4)]
    )
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    AuditEvent.objects.filter(id=events[1].id).delete()
    broken = verify_chain()
    assert broken is not None and broken.id == events[2].id


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain() -> None:
    def write() -> None:
        try:
            for i in range(10):
                record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert AuditEvent.objects.count() == 40
    assert chain_pending().chained == 40
    assert AuditEvent.objects.values("prev_hash").distinct().count() == 40
    assert verify_chain() is None


def test_source_addresses_are_stored_as_postgresql_returns_them(db: None) -> None:
    from dataclasses import replace

    for written, stored in (
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("10.0.0.7", "10.0.0.7"),
        ("unknown", None),
    ):
        event = record(
            actor=replace(SYSTEM, source_address=written), action=Action.READ, code="test.addr"
        )
        assert AuditEvent.objects.get(id=event.id).source_address == stored
    assert verify_chain() is None

"""Tampering by someone who gets past the triggers (a superuser or the tables' owner switching
them off inside a transaction) is detected, and the right event is named, by verify_audit and
by a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from audit.models import Action, AuditEvent
from audit.services import (
    SYSTEM,
    CheckpointInvalid,
    chain_pending,
    chain_verify,
    checkpoint_create,
    checkpoint_load,
    compute_hash,
    record,
)

HASHED_FIELDS = (
    "recorded_at",
    "actor_id",
    "actor_label",
    "role",
    "action",
    "code",
    "outcome",
    "object_type",
    "object_id",
    "case_id",
    "source_address",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)


def _bypass_triggers() -> None:
    with connection.cursor() as cursor:
        # What the tables' owner (the role migrations run as) or a superuser can do; rolled
        # back with the test's transaction.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")


def _events(n: int) -> list[AuditEvent]:
    """``n`` events as the chain holds them, linked by the sequencer (tampering before that
    is an edit of a row not written yet: the chain guards linked events)."""
    written = [
        record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}", details={"i": i})
        for i in range(n)
    ]
    chain_pending()
    return [AuditEvent.objects.get(id=event.id) for event in written]


def test_intact_chain_verifies(db: None) -> None:
    events = _events(5)
    report = chain_verify()
    assert report.ok and report.events_checked == 5 and report.head_id == events[-1].id


def test_row_edited_by_a_superuser_is_named(db: None) -> None:
    events = _events(5)
    _bypass_triggers()
    AuditEvent.objects.filter(id=events[2].id).update(details={"i": 99})
    report = chain_verify()
    assert (report.ok, report.broken_id, report.problem) == (False, events[2].id, "edited")


def test_edit_with_a_recomputed_hash_breaks_the_next_link(db: None) -> None:
    events = _events(5)
    _bypass_triggers()
    forged = AuditEvent.objects.get(id=events[2].id)
    forged.code = "test.forged"
    new_hash = compute_hash(forged, forged.prev_hash)
    AuditEvent.objects.filter(id=forged.id).update(code=forged.code, hash=new_hash)
    report = chain_verify()
    assert (report.broken_id, report.problem) == (events[3].id, "removed")


def test_removed_row_names_the_event_after_the_gap(db: None) -> None:
    events = _events(5)
    _bypass_triggers()
    AuditEvent.objects.filter(id=events[2].id).delete()
    report = chain_verify()
    assert (report.broken_id, report.problem) == (events[3].id, "removed")
    assert f"#{events[1].id}" in report.reason


def test_inserted_row_is_named(db: None) -> None:
    _first, second = _events(2)
    # A rolled-back append leaves a free id between two events, where a forger could fit one.
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=SYSTEM, action=Action.EXECUTE, code="test.rolled_back")
        raise RuntimeError
    (third,) = _events(1)
    gap_id = second.id + 1
    assert third.id > gap_id
    forged = AuditEvent(
        id=gap_id,
        recorded_at=second.recorded_at,
        actor_label="mallory",
        role="admin",
        action=Action.READ,
        code="case.viewed",
        details={},
        prev_hash=second.hash,
    )
    forged.hash = compute_hash(forged, second.hash)  # even a correctly chained forgery
    forged.save(force_insert=True)
    report = chain_verify()
    assert (report.broken_id, report.problem) == (gap_id, "inserted")


def test_swapped_pair_is_named(db: None) -> None:
    events = _events(5)
    a, b = (AuditEvent.objects.get(id=e.id) for e in events[1:3])
    _bypass_triggers()
    for target, source in ((a.id, b), (b.id, a)):
        fields = {name: getattr(source, name) for name in HASHED_FIELDS}
        fields["hash"] = f"{fields['hash'][:-1]}-"  # dodge the unique index mid-swap
        AuditEvent.objects.filter(id=target).update(**fields)
    for target, source in ((a.id, b), (b.id, a)):
        AuditEvent.objects.filter(id=target).update(hash=source.hash)
    report = chain_verify()
    assert (report.ok, report.broken_id) == (False, a.id)


def test_truncated_tail_is_detected_only_against_a_checkpoint(db: None) -> None:
    events = _events(6)
    checkpoint = checkpoint_create()
    assert (checkpoint.head_id, checkpoint.count) == (events[-1].id, 6)
    _bypass_triggers()
    AuditEvent.objects.filter(id__gte=events[4].id).delete()
    assert chain_verify().ok  # a shorter chain is still a valid chain...
    report = chain_verify(checkpoint=checkpoint)  # ...but not the one the auditor saw
    assert (report.ok, report.problem, report.broken_id) == (False, "truncated", events[-1].id)
    assert f"ends at #{events[3].id}" in report.reason


def test_tail_rewritten_after_a_checkpoint_is_detected(db: None) -> None:
    events = _events(4)
    checkpoint = checkpoint_create()
    _bypass_triggers()
    AuditEvent.objects.filter(id=events[-1].id).delete()
    forged = AuditEvent(
        id=events[-1].id,
        recorded_at=events[-1].recorded_at,
        actor_label="mallory",
        role="admin",
        action=Action.EXECUTE,
        code="test.3",
        details={},
        prev_hash=events[-2].hash,
        chain_position=events[-1].chain_position,  # a forger who knows the chain's order
    )
    forged.hash = compute_hash(forged, forged.prev_hash)
    forged.save(force_insert=True)
    assert chain_verify().ok
    report = chain_verify(checkpoint=checkpoint)
    assert (report.problem, report.broken_id) == ("truncated", events[-1].id)


def test_signed_checkpoint_refuses_an_altered_file(db: None) -> None:
    _events(2)
    signed = checkpoint_create(key="k" * 32).as_dict()
    assert checkpoint_load(signed, key="k" * 32).head_id == signed["head_id"]
    with pytest.raises(CheckpointInvalid, match="altered"):
        checkpoint_load({**signed, "count": 1}, key="k" * 32)
    with pytest.raises(CheckpointInvalid, match="no key"):
        checkpoint_load(signed, key="")


@pytest.mark.parametrize(
    "damage",
    [{"head_id": "7"}, {"count": True}, {"head_hash": None}, {"signature": 1}, {"count": 1.0}],
)
def test_a_checkpoint_field_of_a_wrong_json_type_is_refused_not_coerced(
    db: None, damage: dict[str, Any]
) -> None:
    _events(1)
    with pytest.raises(CheckpointInvalid, match="wrong type"):
        checkpoint_load(checkpoint_create().as_dict() | damage)


def test_verify_audit_command_exit_status_and_names_the_event(
    db: None, tmp_path: Path, capsys: Any, settings: Any
) -> None:
    settings.BEDSIDE_AUDIT_CHECKPOINT_KEY = "s" * 32
    events = _events(3)
    checkpoint = tmp_path / "head.json"
    call_command("audit_checkpoint", output=checkpoint)
    saved = json.loads(checkpoint.read_text())
    assert saved["head_id"] == events[-1].id and saved["signature"]
    assert AuditEvent.objects.order_by("-id").first().code == "audit.checkpointed"
    call_command("verify_audit", checkpoint=checkpoint)
    assert "audit chain intact: 4 events" in capsys.readouterr().out
    _bypass_triggers()
    AuditEvent.objects.filter(id=events[1].id).update(code="test.edited")
    with pytest.raises(SystemExit) as exit_status:
        call_command("verify_audit", checkpoint=checkpoint)
    assert exit_status.value.code == 1
    assert f"BROKEN at event #{events[1].id} (edited)" in capsys.readouterr().err


def test_verify_api_checks_a_posted_checkpoint(carol: Any, settings: Any) -> None:
    from tests.conftest import client_for

    settings.BEDSIDE_AUDIT_CHECKPOINT_KEY = "c" * 32
    events = _events(4)
    checkpoint = checkpoint_create(key=settings.BEDSIDE_AUDIT_CHECKPOINT_KEY).as_dict()
    client = client_for(carol)
    assert client.post("/api/v1/audit/verify/", checkpoint, format="json").json()["ok"] is True
    _bypass_triggers()
    AuditEvent.objects.filter(id__gte=events[2].id).delete()
    assert client.get("/api/v1/audit/verify/").json()["ok"] is True  # a shorter valid chain
    report = client.post("/api/v1/audit/verify/", checkpoint, format="json").json()
    assert (report["ok"], report["problem"]) == (False, "truncated")
    forged = client.post("/api/v1/audit/verify/", {**checkpoint, "count": 2}, format="json")
    assert forged.status_code == 400 and "altered" in forged.json()["errors"][0]["msg"]


def test_verification_goes_on_past_the_first_break_and_names_every_one(db: None) -> None:
    events = _events(8)
    _bypass_triggers()
    AuditEvent.objects.filter(id=events[2].id).update(details={"i": 99})
    AuditEvent.objects.filter(id=events[5].id).delete()
    report = chain_verify()
    # The first break still heads the report (verify_audit's exit names it) ...
    assert (report.ok, report.broken_id, report.problem) == (False, events[2].id, "edited")
    # ... and every later one is listed too.
    assert [(b.event_id, b.problem) for b in report.breaks] == [
        (events[2].id, "edited"),
        (events[6].id, "removed"),
    ]
    assert report.breaks_total == 2 and report.events_checked == 7


def test_verify_audit_names_the_first_break_and_lists_the_others(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    events = _events(6)
    _bypass_triggers()
    for event in (events[1], events[4]):
        AuditEvent.objects.filter(id=event.id).update(details={"i": 99})
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"BROKEN at event #{events[1].id} (edited)" in err
    assert f"also broken: event #{events[4].id} (edited)" in err

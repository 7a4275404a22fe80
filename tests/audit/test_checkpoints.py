"""Audit checkpoints are signed by default and written periodically, so a chain rebuilt by
someone who got past the triggers (rewritten, then rehashed from genesis) still fails
against the last checkpoint, and a checkpoint forged to match it is refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audit.models import Action, AuditEvent
from audit.services import SYSTEM, chain_verify, compute_hash, record
from audit.tasks import write_checkpoint_task
from bedside import paths


@pytest.fixture
def checkpoint_dir(settings: Any, tmp_path: Path) -> Path:
    settings.BEDSIDE_AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return Path(settings.BEDSIDE_AUDIT_CHECKPOINT_DIR)


def test_checkpoints_are_signed_by_default_with_a_key_kept_in_the_state_folder(
    db: None, settings: Any, tmp_path: Path
) -> None:
    key_file = paths.state_dir() / "audit_checkpoint_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    if not settings.BEDSIDE_AUDIT_CHECKPOINT_KEY_FROM_ENVIRONMENT:
        assert key_file.read_text().strip() == settings.BEDSIDE_AUDIT_CHECKPOINT_KEY
    assert settings.BEDSIDE_AUDIT_CHECKPOINT_KEY
    record(actor=SYSTEM, action=Action.EXECUTE, code="test.0")
    output = tmp_path / "head.json"
    call_command("audit_checkpoint", output=output)
    assert len(json.loads(output.read_text())["signature"]) == 64  # HMAC-SHA256, hex


def test_beat_writes_a_signed_checkpoint_periodically(
    db: None, settings: Any, checkpoint_dir: Path
) -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == write_checkpoint_task.name
    assert entry["schedule"] == settings.BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S == 3600
    record(actor=SYSTEM, action=Action.EXECUTE, code="test.0")
    first = Path(write_checkpoint_task())
    second = Path(write_checkpoint_task())
    assert sorted(checkpoint_dir.iterdir()) == [first, second]
    assert stat.S_IMODE(second.stat().st_mode) == 0o600
    saved = json.loads(second.read_text())
    assert saved["signature"]
    # Each checkpoint is itself recorded, so the next one covers the event of the first.
    recorded = AuditEvent.objects.filter(code="audit.checkpointed").order_by("id")
    assert saved["head_id"] == recorded.first().id  # type: ignore[union-attr]
    assert recorded.count() == 2
    call_command("verify_audit", latest_checkpoint=True)


def _rebuild_chain_as_a_superuser(edited_id: int) -> None:
    """What a database superuser can do: triggers off, one event rewritten, and every hash
    from there on recomputed, so the chain is consistent again on its own."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER USER")
    AuditEvent.objects.filter(id=edited_id).update(details={"rewritten": True})
    linked = AuditEvent.objects.filter(chain_position__isnull=False)  # the sequencer's work
    previous = linked.filter(id__lt=edited_id).order_by("-chain_position").first()
    prev_hash = previous.hash if previous else None
    for event in linked.filter(id__gte=edited_id).order_by("chain_position"):
        prev = prev_hash if prev_hash is not None else event.prev_hash
        assert prev is not None  # every event here was linked by the checkpoint's sequencer run
        new_hash = compute_hash(event, prev)
        AuditEvent.objects.filter(id=event.id).update(prev_hash=prev, hash=new_hash)
        prev_hash = new_hash


def test_a_rebuilt_chain_fails_against_the_last_signed_checkpoint(
    db: None, checkpoint_dir: Path
) -> None:
    events = [record(actor=SYSTEM, action=Action.EXECUTE, code=f"test.{i}") for i in range(5)]
    latest = Path(write_checkpoint_task())
    _rebuild_chain_as_a_superuser(events[1].id)
    assert chain_verify().ok  # on its own, the rebuilt chain verifies

    with pytest.raises(SystemExit) as broken:
        call_command("verify_audit", latest_checkpoint=True)
    assert broken.value.code == 1
    saved = json.loads(latest.read_text())

    # The rebuilder rewrites the checkpoint file to the new head: no key, no signature.
    new_head = AuditEvent.objects.get(id=saved["head_id"]).hash
    assert new_head != saved["head_hash"]
    latest.write_text(json.dumps({**saved, "head_hash": new_head}))
    with pytest.raises(CommandError, match="altered"):
        call_command("verify_audit", latest_checkpoint=True)
    unsigned = {k: v for k, v in saved.items() if k != "signature"}
    latest.write_text(json.dumps({**unsigned, "head_hash": new_head}))
    with pytest.raises(CommandError, match="not signed"):
        call_command("verify_audit", latest_checkpoint=True)

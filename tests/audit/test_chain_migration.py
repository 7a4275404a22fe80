"""An install whose events were chained before the sequencer (migration 0006): its chain
still verifies, in the same order, and new events link onto its old head. Runs the real
``manage.py migrate`` against a database of its own."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from audit.services import GENESIS_HASH, canonical_json
from tests.test_encryption_migration import manage, scratch_database  # noqa: F401 (fixture)

# Migrates a scratch database from zero in subprocesses: about 20 s.
pytestmark = pytest.mark.slow


def _chain_the_old_way(url: str, count: int) -> list[str]:
    """Events as record() wrote them before 0006: linked at insert, in id order."""
    hashes = []
    prev_hash = GENESIS_HASH
    with psycopg.connect(url, autocommit=True) as db:
        for i in range(count):
            payload = {
                "recorded_at": f"2026-01-01T00:00:0{i}.000000+00:00",
                "actor_id": None,
                "actor_label": "system:worker",
                "role": "system",
                "action": "E",
                "code": f"test.{i}",
                "outcome": "success",
                "object_type": "",
                "object_id": "",
                "case_id": None,
                "source_address": None,
                "request_id": "",
                "details": {"i": i},
            }
            digest = hashlib.sha256(prev_hash.encode())
            digest.update(canonical_json(payload).encode())
            own = digest.hexdigest()
            db.execute(
                "INSERT INTO audit_auditevent (recorded_at, actor_label, role, action, code, "
                "outcome, object_type, object_id, request_id, details, prev_hash, hash) "
                "VALUES (%s, 'system:worker', 'system', 'E', %s, 'success', '', '', '', %s, "
                "%s, %s)",
                [payload["recorded_at"], payload["code"], canonical_json({"i": i}), prev_hash, own],
            )
            hashes.append(own)
            prev_hash = own
    return hashes


def test_events_chained_before_the_sequencer_still_verify_and_new_ones_follow_them(
    scratch_database: str,  # noqa: F811 (the fixture)
) -> None:
    url = scratch_database
    manage(url, "migrate", "audit", "0005", "-v0")
    old = _chain_the_old_way(url, 3)

    manage(url, "migrate", "-v0")

    with psycopg.connect(url, autocommit=True) as db:
        positions = db.execute(
            "SELECT id, chain_position FROM audit_auditevent ORDER BY id"
        ).fetchall()
        assert [position for _id, position in positions] == [row_id for row_id, _p in positions]
        with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
            db.execute("UPDATE audit_auditevent SET code = 'edited'")
    assert "audit chain intact: 3 events" in manage(url, "verify_audit")
    manage(
        url,
        "shell",
        "-c",
        "from audit.models import Action; from audit.services import SYSTEM, record; "
        "record(actor=SYSTEM, action=Action.EXECUTE, code='test.after')",
    )
    assert "audit chain intact: 4 events" in manage(url, "verify_audit")
    with psycopg.connect(url, autocommit=True) as db:
        newest = db.execute(
            "SELECT prev_hash FROM audit_auditevent ORDER BY chain_position DESC LIMIT 1"
        ).fetchone()
    assert newest == (old[-1],)

"""``record``: the one function every other app calls to write an audit event."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import Action, AuditEvent, Outcome

GENESIS_HASH = "0" * 64
# Any fixed 64-bit number: serialises appends so two writers never chain onto the same tail.
_CHAIN_LOCK_KEY = 0x6265647369646561


@dataclass(frozen=True)
class Actor:
    """Who did it. ``user`` is None for the system itself (the worker, the sweeper)."""

    label: str
    role: str
    user_id: int | None = None
    source_address: str | None = None
    request_id: str = ""


SYSTEM = Actor(label="system:worker", role="system")


def canonical_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """The fields the hash covers, in a form that survives a database round trip."""
    return {
        "recorded_at": event.recorded_at.isoformat(timespec="microseconds"),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "role": event.role,
        "action": event.action,
        "code": event.code,
        "outcome": event.outcome,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "case_id": str(event.case_id) if event.case_id else None,
        "source_address": event.source_address,
        "request_id": event.request_id,
        "details": event.details,
    }


def compute_hash(event: AuditEvent, prev_hash: str) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(canonical_json(event_payload(event)).encode())
    return digest.hexdigest()


def record(
    *,
    actor: Actor,
    action: Action,
    code: str,
    object_type: str = "",
    object_id: str = "",
    case_id: uuid.UUID | str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction (or its own).

    An event about a case with no other object names the case as its object.
    """
    if case_id and not object_type:
        object_type, object_id = "case", str(case_id)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
        tail = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        prev_hash = tail or GENESIS_HASH
        event = AuditEvent(
            recorded_at=timezone.now(),
            actor_id=actor.user_id,
            actor_label=actor.label,
            role=actor.role,
            action=action,
            code=code,
            outcome=outcome,
            object_type=object_type,
            object_id=str(object_id),
            case_id=uuid.UUID(str(case_id)) if case_id else None,
            source_address=actor.source_address,
            request_id=actor.request_id,
            details=json.loads(canonical_json(details or {})),
            prev_hash=prev_hash,
        )
        event.hash = compute_hash(event, prev_hash)
        event.save(force_insert=True)
        return event


def verify_chain() -> AuditEvent | None:
    """Walk the chain; return the first event whose link or hash is wrong, else None."""
    prev_hash = GENESIS_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev_hash or compute_hash(event, prev_hash) != event.hash:
            return event
        prev_hash = event.hash
    return None

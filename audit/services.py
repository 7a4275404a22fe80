"""``record``: the one function every other app calls to write an audit event."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
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

# Who is acting in this request or command, for events written from signals (privilege
# changes made through the admin site, say), where no caller can pass an actor.
_current_actor: ContextVar[Actor | None] = ContextVar("bedside_audit_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    token = _current_actor.set(actor)
    try:
        yield
    finally:
        _current_actor.reset(token)


def current_actor() -> Actor | None:
    """The actor set by ``acting_as`` around this code, if any."""
    return _current_actor.get()


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


def _address(value: str | None) -> str | None:
    """The address as PostgreSQL will give it back (so the hash still matches on reading),
    or None when it is not an IP address at all (never a failed write)."""
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


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
    """Write one event inside the caller's transaction (or its own), not linked yet.

    No lock: concurrent writers append side by side and commit together. The event is
    linked into the hash chain after its transaction commits, by ``chain_pending`` (the
    worker's beat every ``CHAIN_INTERVAL_S``, and every auditor's read), so a rolled-back
    write never leaves a link behind and the chain runs in commit order.

    An event about a case with no other object names the case as its object.
    """
    if case_id and not object_type:
        object_type, object_id = "case", str(case_id)
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
        source_address=_address(actor.source_address),
        request_id=actor.request_id,
        details=json.loads(canonical_json(details or {})),
    )
    event.save(force_insert=True)
    return event


# One chunk of the chain, as text PostgreSQL renders exactly the way ``event_payload`` does
# (no per-row type conversion in Python): the time as isoformat with microseconds in UTC,
# the case id as its canonical UUID text, the address as Django stores it.
_CHAIN_COLUMNS_SQL = """
    SELECT id,
           to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           actor_id, actor_label, role, action, code, outcome, object_type, object_id,
           case_id::text, host(source_address), request_id, details::text, prev_hash, hash,
           chain_position
      FROM audit_auditevent
"""
# The chain itself, in its order, a page at a time.
_CHAIN_CHUNK_SQL = (
    _CHAIN_COLUMNS_SQL + " WHERE chain_position > %s ORDER BY chain_position LIMIT %s"
)
# The sequencer's work: events not linked yet that this snapshot sees (committed ones). A
# row with a hash but no position was never written by ``record``: verify names it.
_UNLINKED_SQL = (
    _CHAIN_COLUMNS_SQL
    + " WHERE chain_position IS NULL AND hash IS NULL AND prev_hash IS NULL ORDER BY id LIMIT %s"
)


def _row_hash(row: tuple[Any, ...], prev_hash: str) -> str:
    """``compute_hash`` over one row of ``_CHAIN_CHUNK_SQL``: no model instance per event."""
    payload = {
        "recorded_at": row[1],
        "actor_id": row[2],
        "actor_label": row[3],
        "role": row[4],
        "action": row[5],
        "code": row[6],
        "outcome": row[7],
        "object_type": row[8],
        "object_id": row[9],
        "case_id": row[10],
        "source_address": row[11],
        "request_id": row[12],
        "details": json.loads(row[13]),
    }
    digest = hashlib.sha256()
    digest.update(prev_hash.encode())
    digest.update(canonical_json(payload).encode())
    return digest.hexdigest()


# The beat links what has committed this often: the bound on how long a committed event
# stays out of the chain while a worker's beat runs (auditors' reads link first anyway).
CHAIN_INTERVAL_S = 1.0
# Events linked per transaction of the sequencer: bounds how long it holds the chain lock.
CHAIN_BATCH = 2000


@dataclass(frozen=True)
class Chaining:
    """What one ``chain_pending`` call linked, and how long it held the chain lock."""

    chained: int
    lock_held_s: float


def chain_pending(*, batch: int = CHAIN_BATCH) -> Chaining:
    """The chain's sequencer: link every committed, unlinked event onto the chain's tail.

    It takes the chain lock, so only one sequencer links at a time, and reads the
    unlinked events with a fresh snapshot: only events whose transactions have committed
    (and the caller's own, when it runs inside a transaction). Each gets the next
    ``chain_position``, so the chain is in commit order: an event committed before a
    pass began is linked by that pass or an earlier one, never after an event linked
    later; events that committed between the same two passes go in id order. A batch of
    ``batch`` events is one transaction; it loops until nothing is left.
    """
    chained = 0
    held = 0.0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
            locked = time.perf_counter()
            cursor.execute(
                "SELECT chain_position, hash FROM audit_auditevent "
                "WHERE chain_position IS NOT NULL ORDER BY chain_position DESC LIMIT 1"
            )
            tail = cursor.fetchone()
            position, prev_hash = tail if tail else (0, GENESIS_HASH)
            cursor.execute(_UNLINKED_SQL, [batch])
            rows = cursor.fetchall()
            ids, prevs, hashes, positions = [], [], [], []
            for row in rows:
                position += 1
                own = _row_hash(row, prev_hash)
                ids.append(row[0])
                prevs.append(prev_hash)
                hashes.append(own)
                positions.append(position)
                prev_hash = own
            if rows:
                cursor.execute(
                    "UPDATE audit_auditevent AS e "
                    "SET prev_hash = v.prev_hash, hash = v.hash, chain_position = v.position "
                    "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[]) "
                    "AS v(id, prev_hash, hash, position) WHERE e.id = v.id",
                    [ids, prevs, hashes, positions],
                )
            # The commit (or, inside a caller's transaction, the savepoint's release).
        held += time.perf_counter() - locked
        chained += len(rows)
        if len(rows) < batch:
            return Chaining(chained=chained, lock_held_s=held)


def _chain_rows(chunk_size: int) -> Iterator[tuple[Any, ...]]:
    """Every linked event in chain order, a chunk at a time (keyset pages: no long
    transaction)."""
    last_position = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(_CHAIN_CHUNK_SQL, [last_position, chunk_size])
            rows = cursor.fetchall()
        yield from rows
        if len(rows) < chunk_size:
            return
        last_position = rows[-1][16]


@dataclass(frozen=True)
class Checkpoint:
    """The chain head as an auditor saw it: kept outside the database (a file, a ticket,
    paper), it shows a later reader whether events were cut off the end of the chain."""

    head_id: int
    head_hash: str
    count: int
    created_at: str
    signature: str = ""  # HMAC-SHA256 over the other fields, when a key is configured

    def signed_fields(self) -> dict[str, Any]:
        return {
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "count": self.count,
            "created_at": self.created_at,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.signed_fields(), "signature": self.signature}


def _sign(fields: dict[str, Any], key: str) -> str:
    return hmac.new(key.encode(), canonical_json(fields).encode(), hashlib.sha256).hexdigest()


def checkpoint_create(*, key: str = "") -> Checkpoint:
    """The current head of the chain (everything committed so far linked first), signed
    with ``key`` when one is given."""
    chain_pending()
    head = (
        AuditEvent.objects.filter(chain_position__isnull=False)
        .order_by("-chain_position")
        .values_list("id", "hash", "chain_position")
        .first()
    )
    head_id, head_hash, head_position = head if head else (0, GENESIS_HASH, 0)
    checkpoint = Checkpoint(
        head_id=head_id,
        head_hash=head_hash or GENESIS_HASH,
        count=AuditEvent.objects.filter(chain_position__lte=head_position).count(),
        created_at=timezone.now().isoformat(timespec="seconds"),
    )
    if key:
        checkpoint = Checkpoint(
            **checkpoint.signed_fields(), signature=_sign(checkpoint.signed_fields(), key)
        )
    return checkpoint


CHECKPOINT_WRITER = Actor(label="system:audit-checkpoint", role="system")


def checkpoint_write(*, directory: Path, key: str, actor: Actor = CHECKPOINT_WRITER) -> Path:
    """Write the chain's current head, signed with ``key``, to a new file (mode 0600) in
    ``directory``, and record that it was taken. File names sort by head, so the last is
    the newest (``checkpoint_latest``)."""
    checkpoint = checkpoint_create(key=key)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = checkpoint.created_at.replace(":", "").replace("-", "")[:15]
    path = directory / f"checkpoint-{checkpoint.head_id:015d}-{stamp}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(checkpoint.as_dict(), indent=2) + "\n")
    # Appended after the head it names: the next checkpoint covers this event too.
    record(
        actor=actor,
        action=Action.EXECUTE,
        code="audit.checkpointed",
        object_type="audit_event",
        object_id=str(checkpoint.head_id),
        details={"count": checkpoint.count, "signed": bool(checkpoint.signature)},
    )
    return path


def checkpoint_latest(directory: Path) -> Path | None:
    """The newest file ``checkpoint_write`` left in ``directory``, if any."""
    files = sorted(directory.glob("checkpoint-*.json")) if directory.is_dir() else []
    return files[-1] if files else None


class CheckpointInvalid(ValueError):
    """The checkpoint file is malformed, or its signature does not match the key."""


_CHECKPOINT_FIELDS = {"head_id": int, "head_hash": str, "count": int, "created_at": str}


def checkpoint_load(data: dict[str, Any], *, key: str = "") -> Checkpoint:
    # Exact JSON types, as audit_checkpoint writes them: a "12" or a true where a number
    # belongs is a damaged file (and not what the API document accepts), not one to coerce.
    wrong = [name for name, kind in _CHECKPOINT_FIELDS.items() if type(data.get(name)) is not kind]
    if not isinstance(data.get("signature", ""), str):
        wrong.append("signature")
    if wrong:
        raise CheckpointInvalid(f"not a checkpoint: {', '.join(wrong)} missing or of a wrong type")
    checkpoint = Checkpoint(
        head_id=data["head_id"],
        head_hash=data["head_hash"],
        count=data["count"],
        created_at=data["created_at"],
        signature=data.get("signature", ""),
    )
    if key and not checkpoint.signature:
        # Checkpoints here are signed: an unsigned one is anyone's, and could name a rebuilt
        # chain's head.
        raise CheckpointInvalid("the checkpoint is not signed, but checkpoints here are")
    if checkpoint.signature:
        if not key:
            raise CheckpointInvalid("the checkpoint is signed but no key was given to check it")
        expected = _sign(checkpoint.signed_fields(), key)
        if not hmac.compare_digest(expected.encode(), checkpoint.signature.encode()):
            raise CheckpointInvalid("the checkpoint's signature does not match: it was altered")
    return checkpoint


# Broken events a report names one by one; past this, it counts them (a chain rewritten
# wholesale would otherwise make a report, and its audit event, as long as the chain).
MAX_BREAKS_LISTED = 1000


@dataclass(frozen=True)
class ChainBreak:
    event_id: int
    problem: str  # edited | inserted | removed | truncated
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "problem": self.problem, "reason": self.reason}


@dataclass(frozen=True)
class ChainReport:
    """What a walk of the chain found. ``broken_id`` names the first event that fails;
    ``breaks`` every one the walk found (it goes on past the first), up to
    ``MAX_BREAKS_LISTED``, and ``breaks_total`` counts them all."""

    ok: bool
    events_checked: int
    head_id: int | None
    head_hash: str
    broken_id: int | None = None
    problem: str = ""  # edited | inserted | removed | truncated
    reason: str = ""
    checkpoint: Checkpoint | None = None
    seconds: float = 0.0
    breaks: tuple[ChainBreak, ...] = ()
    breaks_total: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events_checked": self.events_checked,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
            "broken_id": self.broken_id,
            "problem": self.problem,
            "reason": self.reason,
            "checkpoint": self.checkpoint.as_dict() if self.checkpoint else None,
            "seconds": round(self.seconds, 3),
            "breaks": [b.as_dict() for b in self.breaks],
            "breaks_total": self.breaks_total,
        }


def chain_verify(*, checkpoint: Checkpoint | None = None, chunk_size: int = 10000) -> ChainReport:
    """Link what has committed, then walk the whole chain in chain order, streaming rows
    (one query, no model instances), and go on past a break: each later link is checked
    against the hash its row stores.

    - a row whose content no longer matches its own hash was **edited**;
    - a row whose ``prev_hash`` is the hash of the row two back follows a row that was
      **inserted** (that row is named);
    - any other broken link means rows before it were **removed** or reordered;
    - with a checkpoint, a chain that no longer reaches the checkpoint's head (or reaches
      it with a different hash or count) was **truncated** or rewritten;
    - an event that carries a hash but no place in the chain never went through the
      sequencer: it was **inserted** behind its back.
    """
    started = time.monotonic()
    chain_pending()
    prev_hash = before_prev_hash = GENESIS_HASH
    prev_id: int | None = None
    count = 0
    checkpoint_seen = checkpoint is None or checkpoint.head_id == 0
    breaks: list[ChainBreak] = []
    named: set[int] = set()
    total = 0

    def broken(event_id: int, problem: str, reason: str) -> None:
        nonlocal total
        if event_id in named:  # a swapped pair names each event once
            return
        total += 1
        if len(breaks) < MAX_BREAKS_LISTED:
            breaks.append(ChainBreak(event_id, problem, reason))
            named.add(event_id)

    for row in _chain_rows(chunk_size):
        event_id, stored_prev, stored_hash = row[0], row[14], row[15]
        if stored_prev != prev_hash:
            if prev_id is not None and stored_prev == before_prev_hash:
                broken(
                    prev_id,
                    "inserted",
                    f"event #{event_id} is chained to the event before #{prev_id}: "
                    f"#{prev_id} was inserted afterwards",
                )
            else:
                after = f"#{prev_id}" if prev_id is not None else "the start of the chain"
                broken(
                    event_id,
                    "removed",
                    f"event #{event_id} does not follow {after}: the event(s) it was chained "
                    "to were removed or moved",
                )
        elif _row_hash(row, prev_hash) != stored_hash:
            broken(
                event_id, "edited", f"event #{event_id} no longer matches its hash: it was edited"
            )
        count += 1
        before_prev_hash, prev_hash, prev_id = prev_hash, stored_hash, event_id
        if checkpoint is not None and event_id == checkpoint.head_id:
            checkpoint_seen = True
            if stored_hash != checkpoint.head_hash or count != checkpoint.count:
                broken(
                    event_id,
                    "truncated",
                    f"event #{event_id} is the checkpoint's head but the chain up to it differs "
                    f"(hash or count {count} != {checkpoint.count}): it was rewritten",
                )
    if not checkpoint_seen:
        assert checkpoint is not None
        last = f"#{prev_id}" if prev_id is not None else "nothing"
        broken(
            checkpoint.head_id,
            "truncated",
            f"the checkpoint of {checkpoint.created_at} names event #{checkpoint.head_id} "
            f"({checkpoint.count} events) but the chain ends at {last} ({count} events): "
            "the tail was removed",
        )
    stray = (
        AuditEvent.objects.filter(chain_position__isnull=True)
        .exclude(hash__isnull=True, prev_hash__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if stray is not None:
        broken(
            stray,
            "inserted",
            f"event #{stray} carries a hash but the sequencer never linked it: "
            "it was inserted outside the chain",
        )
    first = breaks[0] if breaks else None
    return ChainReport(
        ok=first is None,
        events_checked=count,
        head_id=prev_id,
        head_hash=prev_hash,
        broken_id=first.event_id if first else None,
        problem=first.problem if first else "",
        reason=first.reason if first else "",
        checkpoint=checkpoint,
        seconds=time.monotonic() - started,
        breaks=tuple(breaks),
        breaks_total=total,
    )


def verify_chain() -> AuditEvent | None:
    """Walk the chain; return the first event whose link or hash is wrong, else None."""
    result = chain_verify()
    if result.ok or result.broken_id is None:
        return None
    return AuditEvent.objects.get(id=result.broken_id)


def audit_viewed(*, actor: Actor, view: str, filters: dict[str, Any], count: int) -> None:
    """An auditor read the trail (a list, a screen): who looked at what, with which filters."""
    record(
        actor=actor,
        action=Action.READ,
        code="audit.viewed",
        object_type="audit_view",
        object_id=view,
        details={"filters": filters, "count": count},
    )


def chain_verify_recorded(*, actor: Actor, checkpoint: Checkpoint | None = None) -> ChainReport:
    """Verify the chain (against a checkpoint, if given) and record that someone did."""
    report = chain_verify(checkpoint=checkpoint)
    record(
        actor=actor,
        action=Action.EXECUTE,
        code="audit.verified",
        outcome=Outcome.SUCCESS if report.ok else Outcome.FAILURE,
        object_type="audit_chain",
        object_id=str(report.head_id or ""),
        details={
            "ok": report.ok,
            "events_checked": report.events_checked,
            "broken_id": report.broken_id,
            "problem": report.problem,
            "broken_ids": [b.event_id for b in report.breaks],
            "breaks_total": report.breaks_total,
            "checkpoint_head_id": checkpoint.head_id if checkpoint else None,
        },
    )
    return report


def export_created(
    *, actor: Actor, export_format: str, filters: dict[str, Any], count: int
) -> None:
    record(
        actor=actor,
        action=Action.READ,
        code="export.created",
        object_type="audit_export",
        object_id=export_format,
        details={"format": export_format, "filters": filters, "count": count},
    )

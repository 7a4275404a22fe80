"""What a delivery to an EHR's system does after each attempt, the same for completion
callbacks (``callbacks.py``) and FHIR write-back (``writeback.py``): whether it was the
last attempt, what the audit event says about it, and when to try again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    retry_in: int | None  # seconds until the next attempt; None: no further attempt


def backoff(attempt: int, *, base_s: float) -> int:
    """Doubling from ``base_s`` after the first attempt, at most an hour."""
    return int(min(base_s * 2 ** (attempt - 1), 3600))


def attempt_settled(
    *,
    delivered: bool,
    error: str,
    attempt: int,
    max_attempts: int,
    backoff_base_s: float,
    final_errors: tuple[str, ...],
    details: dict[str, Any],
) -> tuple[Delivery, dict[str, Any]]:
    """The outcome of one attempt and its audit event's details. No further attempt after
    a delivery, after the last allowed attempt, or after an error no retry can mend (a
    refused host, a missing secret): those end with ``gave_up`` in the event."""
    last = attempt >= max_attempts or error in final_errors
    details = details | ({"error": error} if error else {})
    if not delivered and last:
        details["gave_up"] = True
    if delivered or last:
        return Delivery(delivered=delivered, retry_in=None), details
    return Delivery(delivered=False, retry_in=backoff(attempt, base_s=backoff_base_s)), details

"""Reading the answer of another server on the network (an EHR's FHIR server, a key server)
within bounds: no more than a stated size, and, where a deadline is given, not after it. A
server that answers without end must not make Bedside hold an unbounded body, nor keep a
clinician's request waiting past its deadline."""

from __future__ import annotations

import time

import httpx


class AnswerTooLarge(Exception):
    """The answer went past its size bound."""


class AnswerTooLate(Exception):
    """The answer was still arriving at its deadline."""


def read_bounded(
    response: httpx.Response, *, max_bytes: int, deadline: float | None = None
) -> bytes:
    """The body of a streamed ``response``, read up to ``max_bytes``; ``deadline`` is a
    ``time.monotonic()`` instant."""
    raw = bytearray()
    for chunk in response.iter_bytes():
        raw += chunk
        if len(raw) > max_bytes:
            raise AnswerTooLarge(max_bytes)
        if deadline is not None and time.monotonic() > deadline:
            raise AnswerTooLate()
    return bytes(raw)

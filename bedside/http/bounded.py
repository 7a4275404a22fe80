"""Reading the answer of another server on the network (an EHR's FHIR server, a key server)
within bounds: no more than a stated size, and, where a deadline is given, not after it. A
server that answers without end must not make Bedside hold an unbounded body, nor keep a
clinician's request waiting past its deadline."""

from __future__ import annotations

import ssl
import time

import httpx


class AnswerTooLarge(Exception):
    """The answer went past its size bound."""


class AnswerTooLate(Exception):
    """The answer was still arriving at its deadline."""


class AnswerNotOk(Exception):
    """The server answered another status than 200 (a redirect included: none is followed,
    since it could lead off the host that was checked)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


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


def get_bounded(url: str, *, timeout_s: float, max_bytes: int, ca_file: str = "") -> bytes:
    """GET ``url``'s body: 200 only, no redirects, at most ``max_bytes``; ``ca_file``
    replaces the default trusted CAs. Raises ``AnswerNotOk``, ``AnswerTooLarge`` or
    ``httpx.HTTPError``."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
    with (
        httpx.Client(timeout=timeout_s, follow_redirects=False, verify=verify) as client,
        client.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise AnswerNotOk(response.status_code)
        return read_bounded(response, max_bytes=max_bytes)

"""Several model servers behind the one client interface the reasoning code uses.

Each server gets its own ``ModelClient`` (the same OpenAI-compatible HTTP client, for the
CPU build and GPU vLLM alike). A request goes to the server in service with the fewest
requests in flight (ties taken in turn), so continuous batching on every GPU host stays
fed. A server that cannot be reached is taken out of service and the request moves on to
the next one; after a cool-down the server is asked ``/models`` and, if it answers, put
back. When no server is in service, all are asked at once rather than waiting out the
cool-down. Knows nothing of Django, like the client.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Unpack

from reasoning.client import ChatParameters, ChatResult, ModelClient, ModelUnavailable
from reasoning.protocol import ModelCard

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class Server:
    """One model server and what the pool knows of it."""

    client: ModelClient
    in_flight: int = 0
    requests: int = 0
    out_until: float | None = None  # None: in service
    reason: str = ""
    probing: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        return self.client.base_url

    @property
    def in_service(self) -> bool:
        return self.out_until is None


class ModelPool:
    def __init__(
        self,
        base_urls: Sequence[str],
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_urls:
            raise ValueError("a model pool needs at least one server")
        self.model = model
        self.max_retries = max_retries
        self.cooldown_s = cooldown_s
        self.clock = clock
        # Each client tries once: moving on to another server beats retrying a dead one.
        self.servers = [
            Server(
                ModelClient(
                    url,
                    model,
                    api_key=api_key,
                    timeout_s=timeout_s,
                    connect_timeout_s=connect_timeout_s,
                    max_retries=0,
                )
            )
            for url in base_urls
        ]
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def base_url(self) -> str:
        return ",".join(server.url for server in self.servers)

    def close(self) -> None:
        for server in self.servers:
            server.client.close()

    # --- choosing a server ---------------------------------------------------------------

    def _readmit(self, *, now_even_if_cooling: bool = False) -> None:
        """Ask servers out of service whether they answer again; put back those that do."""
        now = self.clock()
        with self._lock:
            due = [
                s
                for s in self.servers
                if not s.in_service
                and not s.probing
                and (now_even_if_cooling or (s.out_until or 0) <= now)
            ]
            for server in due:
                server.probing = True
        for server in due:
            problem = server.client.ping()
            with self._lock:
                server.probing = False
                if problem is None:
                    server.out_until, server.reason = None, ""
                else:
                    server.out_until, server.reason = self.clock() + self.cooldown_s, problem
            if problem is None:
                logger.warning("model server %s answers again; back in service", server.url)

    def _take_out(self, server: Server, reason: str) -> None:
        with self._lock:
            server.out_until = self.clock() + self.cooldown_s
            server.reason = reason[:300]
        logger.warning(
            "model server %s out of service for %.0f s: %s", server.url, self.cooldown_s, reason
        )

    def _acquire(self, tried: set[int]) -> Server | None:
        with self._lock:
            count = len(self.servers)
            turn = self._turn
            self._turn = (turn + 1) % count
            candidates = [
                (s.in_flight, (i - turn) % count, i)
                for i, s in enumerate(self.servers)
                if s.in_service and i not in tried
            ]
            if not candidates:
                return None
            index = min(candidates)[2]
            server = self.servers[index]
            server.in_flight += 1
            server.requests += 1
            tried.add(index)
            return server

    def _release(self, server: Server) -> None:
        with self._lock:
            server.in_flight -= 1

    def _call(self, send: Callable[[ModelClient], T]) -> T:
        errors: list[str] = []
        for round_ in range(self.max_retries + 1):
            if round_:
                time.sleep(min(8.0, 0.5 * 2**round_) * (0.5 + random.random()))  # noqa: S311
            self._readmit(now_even_if_cooling=not any(s.in_service for s in self.servers))
            tried: set[int] = set()
            while (server := self._acquire(tried)) is not None:
                try:
                    return send(server.client)
                except ModelUnavailable as exc:
                    errors.append(str(exc))
                    if exc.server_down:
                        self._take_out(server, str(exc))
                finally:
                    self._release(server)
        out = [f"{s.url}: {s.reason}" for s in self.servers if not s.in_service]
        detail = "; ".join(errors[-len(self.servers) :] or out) or "no server in service"
        raise ModelUnavailable(f"no model server answered ({detail})")

    # --- the client interface ----------------------------------------------------------------

    def chat(
        self, *, messages: list[dict[str, str]], **parameters: Unpack[ChatParameters]
    ) -> ChatResult:
        return self._call(lambda client: client.chat(messages=messages, **parameters))

    def models(self) -> list[ModelCard]:
        return self._call(lambda client: client.models())

    def ping(self, timeout_s: float = 2.0) -> str | None:
        """None when at least one server answers ``/models``, else every server's reason."""
        problems = {s.url: s.client.ping(timeout_s) for s in self.servers}
        if any(problem is None for problem in problems.values()):
            return None
        return "; ".join(f"{url}: {problem}" for url, problem in problems.items())

    def status(self) -> list[dict[str, Any]]:
        """Each server's state, for logs and metrics (no patient data)."""
        with self._lock:
            return [
                {
                    "url": s.url,
                    "in_service": s.in_service,
                    "in_flight": s.in_flight,
                    "requests": s.requests,
                    "reason": s.reason,
                }
                for s in self.servers
            ]

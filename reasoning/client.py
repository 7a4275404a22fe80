"""A small client for any OpenAI-compatible model server (vLLM in practice).

Knows nothing of Django: it takes a base URL and a model name, sends plain HTTP, checks
every response with pydantic, retries only what is worth retrying (connection errors,
408/409/429/5xx) a bounded number of times with jitter, and raises typed errors.
One instance is shared by all worker threads; ``httpx.Client`` pools connections so
many requests can be in flight at once and the server can batch them.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import httpx
from pydantic import ValidationError

from reasoning.protocol import ChatCompletion, ModelCard, ModelList

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}


class ModelServerError(Exception):
    """Base of everything the client raises."""


class ModelUnavailable(ModelServerError):
    """The server could not be reached or is overloaded: try again later.

    ``server_down`` is true when the server could not be reached at all (refused or lost
    connection, no answer to the connection attempt), as opposed to busy or slow: a pool
    of servers takes such a server out of service for a while."""

    def __init__(self, message: str, *, server_down: bool = False) -> None:
        super().__init__(message)
        self.server_down = server_down


class ModelRequestRejected(ModelServerError):
    """The server understood and refused the request (4xx): retrying will not help."""


class ModelResponseInvalid(ModelServerError):
    """The server answered with something that is not a chat completion."""


def refusal_summary(response: httpx.Response) -> str:
    """What a refusal says, without its message: a server may quote the prompt back, and this
    text is stored, shown and audited. The error's type, and the one cause worth naming."""
    try:
        error = response.json().get("error") or {}
        kind = str(error.get("type") or "")[:60]
        message = str(error.get("message") or "")
    except (ValueError, AttributeError):
        return ""
    summary = f" {kind}" if kind.replace("_", "").isalnum() else ""
    if "context length" in message.lower() or "maximum context" in message.lower():
        summary += ": the prompt and answer do not fit the model's context window"
    return summary


@dataclass(frozen=True)
class ChatResult:
    completion: ChatCompletion
    raw: dict[str, Any]
    latency_s: float


class ChatParameters(TypedDict, total=False):
    """A chat completion's sampling and output options, named once for the request body, the
    model client and the pool of model servers; what is left out takes the default below."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    response_format: dict[str, Any] | None
    logprobs: bool
    seed: int | None


CHAT_DEFAULTS: ChatParameters = {"n": 1, "temperature": 0.6, "top_p": 0.95, "max_tokens": 1024}


def chat_body(
    *, model: str, messages: list[dict[str, str]], **parameters: Unpack[ChatParameters]
) -> dict[str, Any]:
    """The JSON body of a chat completion request, as ``ModelClient.chat`` sends it (the
    pipeline benchmark sends the same body straight to the server, to compare like with like).
    ``response_format``, ``logprobs`` and ``seed`` go only when given."""
    body: dict[str, Any] = {"model": model, "messages": messages, **CHAT_DEFAULTS}
    # Absent, not sent: None (no response format, no seed) and logprobs=False; a 0 is sent.
    body.update(
        {
            name: value
            for name, value in parameters.items()
            if value is not None and value is not False
        }
    )
    return body


class ModelClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 2,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            trust_env=False,  # never route patient data through an environment proxy
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        last_error = ""
        server_down = False
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2**attempt) * (0.5 + random.random()))  # noqa: S311
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException as exc:
                last_error = f"timed out ({type(exc).__name__})"
                server_down = isinstance(exc, httpx.ConnectTimeout)
                continue
            except httpx.TransportError as exc:
                last_error = f"unreachable ({type(exc).__name__}: {exc})"
                server_down = True
                continue
            if response.status_code in RETRYABLE_STATUS:
                last_error = f"HTTP {response.status_code}"
                server_down = False
                continue
            if response.status_code >= 400:
                raise ModelRequestRejected(
                    f"{method} {path}: HTTP {response.status_code}{refusal_summary(response)}"
                )
            return response
        raise ModelUnavailable(
            f"model server at {self.base_url} {last_error}", server_down=server_down
        )

    def chat(
        self, *, messages: list[dict[str, str]], **parameters: Unpack[ChatParameters]
    ) -> ChatResult:
        body = chat_body(model=self.model, messages=messages, **parameters)
        started = time.monotonic()
        response = self._request("POST", "/chat/completions", json=body)
        latency = time.monotonic() - started
        try:
            raw = response.json()
            completion = ChatCompletion.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            raise ModelResponseInvalid(f"not a chat completion: {exc}") from exc
        return ChatResult(completion=completion, raw=raw, latency_s=latency)

    def models(self) -> list[ModelCard]:
        response = self._request("GET", "/models")
        try:
            return ModelList.model_validate(response.json()).data
        except (ValueError, ValidationError) as exc:
            raise ModelResponseInvalid(f"not a model list: {exc}") from exc

    def ping(self, timeout_s: float = 2.0) -> str | None:
        """Return None when the server answers ``/models``, else the reason it does not."""
        try:
            response = self._http.get("/models", timeout=timeout_s)
        except httpx.HTTPError as exc:
            return f"unreachable: {type(exc).__name__}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        return None

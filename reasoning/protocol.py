"""The parts of an OpenAI-compatible chat completion that Bedside reads.

Servers add fields of their own (vLLM's ``reasoning``, older ``reasoning_content``,
``stop_reason``), so unknown fields are kept, but the fields we rely on are checked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class TokenLogprob(_Lenient):
    token: str
    logprob: float


class ChoiceLogprobs(_Lenient):
    content: list[TokenLogprob] | None = None


class Message(_Lenient):
    role: str = "assistant"
    content: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None


class Choice(_Lenient):
    index: int
    message: Message
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class Usage(_Lenient):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatCompletion(_Lenient):
    id: str = ""
    model: str
    choices: list[Choice] = Field(min_length=1)
    usage: Usage | None = None


class ModelCard(_Lenient):
    id: str
    root: str | None = None
    max_model_len: int | None = None


class ModelList(_Lenient):
    data: list[ModelCard]

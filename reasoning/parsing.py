"""From one choice of a chat completion to a checked sample: the answer (or the reason
there is none) and the reasoning trace with the place it was found.

Trace sources, in order: the message's ``reasoning`` field (vLLM with a reasoning
parser), ``reasoning_content`` (older vLLM), a ``<think>…</think>`` block in the content
(an R1-style model served without a parser; the opening tag may be missing because the
chat template already opened it), else the answer's own ``reasoning_steps``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from reasoning import gate
from reasoning.facts import Fact
from reasoning.protocol import Choice
from reasoning.schemas import Assessment, CheckedAssessment

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


class TraceSource(StrEnum):
    REASONING = "reasoning"
    REASONING_CONTENT = "reasoning_content"
    THINK_TAGS = "think_tags"
    ANSWER_STEPS = "answer_steps"
    NONE = "none"


@dataclass
class Sample:
    index: int
    finish_reason: str | None
    assessment: Any  # the validated answer (an Assessment, or an McqAnswer in evaluation)
    error: str
    trace: str
    trace_source: TraceSource
    mean_logprob: float | None = None
    token_count: int = 0
    notes: list[str] = field(default_factory=list)
    # After the answer gate (case answers only; evaluation's MCQ answers have no facts).
    checked: CheckedAssessment | None = None
    gate: gate.GateResult | None = None

    @property
    def usable(self) -> bool:
        return self.assessment is not None

    @property
    def top_answer(self) -> str | None:
        if self.checked is not None:
            return self.checked.differential[0].diagnosis
        return self.assessment.top_answer() if self.assessment is not None else None

    @property
    def top_key(self) -> tuple[str, str]:
        """What self-consistency compares: (exact key, broader key). The ICD-10-CM code
        and its 3-character category when the top diagnosis is coded, else the
        normalised text for both."""
        result = self.gate
        if result is not None and result.top_code and result.top_category:
            return f"code:{result.top_code}", f"category:{result.top_category}"
        text = f"text:{gate.normalise(self.top_answer or '')}"
        return text, text

    def summary(self) -> dict[str, object]:
        """What a run stores per sample (the full text is in the raw response)."""
        return {
            "index": self.index,
            "finish_reason": self.finish_reason,
            "usable": self.usable,
            "error": self.error,
            "trace_source": self.trace_source.value,
            "top_diagnosis": self.top_answer,
            "stated_confidence": self.assessment.stated_confidence if self.assessment else None,
            "mean_logprob": self.mean_logprob,
            **self._gate_summary(),
        }

    def _gate_summary(self) -> dict[str, object]:
        result = self.gate
        if result is None:
            return {}
        return {
            "top_code": result.top_code,
            "gate_reasons": result.reasons[:20],
            "cited_facts": result.cited,
            "verified_facts": result.verified,
            "diagnoses": result.diagnoses,
            "coded_diagnoses": result.coded,
        }


def split_think(content: str) -> tuple[str | None, str]:
    """Return (trace, answer text) when the content carries a think block, else (None, content)."""
    if THINK_CLOSE in content:
        before, _, after = content.partition(THINK_CLOSE)
        _, opened, inside = before.partition(THINK_OPEN)
        trace = inside if opened else before
        return trace.strip(), after.strip()
    if content.lstrip().startswith(THINK_OPEN):
        # Opened and never closed: the sample ran out of tokens while thinking.
        return content.lstrip()[len(THINK_OPEN) :].strip(), ""
    return None, content


def _mean_logprob(choice: Choice) -> tuple[float | None, int]:
    if choice.logprobs is None or not choice.logprobs.content:
        return None, 0
    values = [t.logprob for t in choice.logprobs.content if math.isfinite(t.logprob)]
    if not values:
        return None, 0
    return sum(values) / len(values), len(values)


def parse_choice(
    choice: Choice, *, schema: type[BaseModel] = Assessment, facts: list[Fact] | None = None
) -> Sample:
    """Check one choice against ``schema``; with the case's ``facts``, pass it through the
    answer gate too (a sample the gate refuses is not usable, with the gate's reasons)."""
    message = choice.message
    content = message.content or ""
    think_trace, answer_text = split_think(content)
    mean_logprob, token_count = _mean_logprob(choice)

    assessment: Any = None
    error = ""
    gated: gate.GateResult | None = None
    if choice.finish_reason == "length":
        error = "truncated: the answer hit the token limit (finish_reason=length)"
    elif not answer_text.strip():
        error = "empty answer"
    else:
        try:
            assessment = schema.model_validate(json.loads(answer_text))
        except json.JSONDecodeError as exc:
            error = f"invalid JSON: {exc.msg} at position {exc.pos}"
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first["loc"]) or "(answer)"
            error = f"answer does not match the schema: {loc}: {first['msg']}"
    if assessment is not None and facts is not None:
        gated = gate.check(assessment, facts)
        error = gated.error
    trace_from_steps = assessment is not None  # a sample that ignores the case keeps its trace
    if message.reasoning and message.reasoning.strip():
        trace, source = message.reasoning.strip(), TraceSource.REASONING
    elif message.reasoning_content and message.reasoning_content.strip():
        trace, source = message.reasoning_content.strip(), TraceSource.REASONING_CONTENT
    elif think_trace:
        trace, source = think_trace, TraceSource.THINK_TAGS
    elif trace_from_steps:
        trace = "\n".join(f"{i}. {s}" for i, s in enumerate(assessment.reasoning_steps, 1))
        source = TraceSource.ANSWER_STEPS
    else:
        trace, source = "", TraceSource.NONE
    if error:
        assessment = None

    return Sample(
        index=choice.index,
        finish_reason=choice.finish_reason,
        assessment=assessment,
        error=error,
        trace=trace,
        trace_source=source,
        mean_logprob=mean_logprob,
        token_count=token_count,
        checked=gated.checked if gated is not None else None,
        gate=gated,
    )

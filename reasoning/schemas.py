"""``Assessment``: the answer the model must give, sent to the server as a JSON schema
and validated again on our side. Lengths are bounded so a runaway sample ends as a
visible schema failure, not an endless string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Phrase = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Facts = Annotated[list[Phrase], Field(max_length=4)]


class Likelihood(StrEnum):
    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Diagnosis(_Answer):
    diagnosis: Phrase
    likelihood: Likelihood
    supporting_facts: Facts = Field(description="The case facts this diagnosis rests on")


class NextStep(_Answer):
    action: Phrase
    based_on: Facts = Field(description="The case facts that call for this step")


class RedFlag(_Answer):
    flag: Phrase
    based_on: Facts


class Assessment(_Answer):
    reasoning_steps: list[Annotated[str, StringConstraints(min_length=1, max_length=400)]] = Field(
        min_length=1, max_length=6, description="Short steps of reasoning, in order"
    )
    differential: list[Diagnosis] = Field(
        min_length=1, max_length=5, description="Most likely first"
    )
    next_steps: list[NextStep] = Field(max_length=5)
    red_flags: list[RedFlag] = Field(max_length=4)
    stated_confidence: float = Field(
        ge=0, le=1, description="How sure you are of the top diagnosis, 0 to 1"
    )


def assessment_json_schema() -> dict[str, Any]:
    return Assessment.model_json_schema()


def response_format() -> dict[str, Any]:
    """The OpenAI-compatible ``response_format`` that constrains the model's answer."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "assessment", "schema": assessment_json_schema(), "strict": True},
    }

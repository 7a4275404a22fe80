"""``Assessment``: the answer the model must give, sent to the server as a JSON schema
and validated again on our side. Lengths are bounded so a runaway sample ends as a
visible schema failure, not an endless string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bedside.http.fields import IsoDateTime

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

    def top_answer(self) -> str:
        """What self-consistency compares across samples: the top diagnosis."""
        return self.differential[0].diagnosis

    def conclusions(self) -> list[str]:
        return [
            *(d.diagnosis for d in self.differential),
            *(step.action for step in self.next_steps),
            *(flag.flag for flag in self.red_flags),
        ]

    def cited_facts(self) -> list[str]:
        return [
            *(fact for d in self.differential for fact in d.supporting_facts),
            *(fact for step in self.next_steps for fact in step.based_on),
            *(fact for flag in self.red_flags for fact in flag.based_on),
        ]


class McqAnswer(_Answer):
    """The answer to a multiple-choice validation vignette (``manage.py evaluate``)."""

    reasoning_steps: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] = Field(
        min_length=1, max_length=4, description="Short steps of reasoning, in order"
    )
    answer: Annotated[str, StringConstraints(pattern="^[A-J]$")] = Field(
        description="The letter of the one best option"
    )
    stated_confidence: float = Field(ge=0, le=1, description="How sure you are, 0 to 1")

    def top_answer(self) -> str:
        return self.answer

    def conclusions(self) -> list[str]:
        return []

    def cited_facts(self) -> list[str]:
        return []


def mcq_response_format(letters: list[str]) -> dict[str, Any]:
    """Like ``response_format``, with the answer held to this vignette's option letters."""
    schema = McqAnswer.model_json_schema()
    schema["properties"]["answer"] = {
        "type": "string",
        "enum": sorted(letters),
        "description": "The letter of the one best option",
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "mcq_answer", "schema": schema, "strict": True},
    }


def assessment_json_schema() -> dict[str, Any]:
    return Assessment.model_json_schema()


def response_format() -> dict[str, Any]:
    """The OpenAI-compatible ``response_format`` that constrains the model's answer."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "assessment", "schema": assessment_json_schema(), "strict": True},
    }


# --- What the API returns about runs and models -----------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalibrationSummary(_Response):
    """The calibration in force for a model revision (or frozen with a run)."""

    id: int
    method: str
    report_id: int
    sample_size: int


class SampleSummary(_Response):
    """What a run stores of each sample (the full text stays in the raw response)."""

    index: int
    finish_reason: str | None
    usable: bool
    error: str
    trace_source: str
    top_diagnosis: str | None
    stated_confidence: float | None
    mean_logprob: float | None
    grounded_share: float | None = None


class Dataset(_Response):
    name: str
    sha256: str


class ValidationReportSummary(_Response):
    id: int
    created_at: IsoDateTime
    dataset: Dataset
    prompt_version: str
    items: int
    metrics: dict[str, float | None]
    reliability_png: str = Field(json_schema_extra={"format": "uri"})


class ModelRevision(_Response):
    revision: str
    model_id: str
    max_model_len: int | None
    first_seen_at: IsoDateTime
    last_seen_at: IsoDateTime
    latest_report: ValidationReportSummary | None
    calibration: CalibrationSummary | None


class ModelValidation(_Response):
    """The served model revisions, newest first, each with its latest validation."""

    results: list[ModelRevision]

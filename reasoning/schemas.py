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


FINDING_PATTERN = r"^[A-Za-z][A-Za-z0-9 ',()/+-]{2,119}$"


def assessment_json_schema(fact_ids: list[str] | None = None) -> dict[str, Any]:
    """The answer's schema; with ``fact_ids``, every cited fact must be one of them (an
    enum defined once under ``$defs``), and each finding must cite at least one."""
    schema = Assessment.model_json_schema()
    if fact_ids is None:
        return schema
    schema["$defs"]["FactId"] = {"type": "string", "enum": list(fact_ids)}
    cited = {"type": "array", "items": {"$ref": "#/$defs/FactId"}, "minItems": 1, "maxItems": 4}
    citing = (("Diagnosis", "supporting_facts"), ("NextStep", "based_on"), ("RedFlag", "based_on"))
    for name, key in citing:
        description = schema["$defs"][name]["properties"][key].get("description")
        schema["$defs"][name]["properties"][key] = {
            **cited,
            "description": description or "Ids of the case facts this rests on",
        }
    # Findings are words: guided decoding cannot start one with a digit or write JSON
    # punctuation inside it ("1.0},{", ", "), the junk a small model otherwise emits. The gate
    # checks again on our side, for servers without guided decoding.
    # The length is in the pattern: xgrammar refuses a pattern beside minLength/maxLength.
    for name, key in (("Diagnosis", "diagnosis"), ("NextStep", "action"), ("RedFlag", "flag")):
        prop = schema["$defs"][name]["properties"][key]
        prop.pop("minLength", None)
        prop.pop("maxLength", None)
        prop["pattern"] = FINDING_PATTERN
    return schema


def response_format(fact_ids: list[str] | None = None) -> dict[str, Any]:
    """The OpenAI-compatible ``response_format`` that constrains the model's answer; built
    per case so that citations are chosen from the case's fact ids, not written."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "assessment",
            "schema": assessment_json_schema(fact_ids),
            "strict": True,
        },
    }


# --- The checked answer: what the clinician is shown ------------------------------------


class _Checked(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CitedFact(_Checked):
    """One of the case's own facts, with the input field it came from."""

    id: str = Field(description="The fact's id in the prompt (F1, F2, …); empty on legacy runs")
    text: str
    path: str = Field(description="Where in the case input it is, e.g. 'vitals.spo2', 'labs[0]'")


class DiagnosisCoding(_Checked):
    system: str
    code: str
    description: str
    category: str = Field(description="The three-character ICD-10-CM category")


class CheckedDiagnosis(_Checked):
    diagnosis: str = Field(description="The model's words")
    likelihood: Likelihood
    coding: DiagnosisCoding | None = None
    supporting_facts: list[CitedFact]


class CheckedNextStep(_Checked):
    action: str
    based_on: list[CitedFact]


class CheckedRedFlag(_Checked):
    flag: str
    based_on: list[CitedFact]


class CheckedAssessment(_Checked):
    """The answer after the gate: unique diagnoses, each finding resting on at least one
    verified case fact; nothing unsupported or junk. ``legacy`` marks a run stored before
    the gate existed, whose citations were free text and were never verified."""

    reasoning_steps: list[str]
    differential: list[CheckedDiagnosis]
    next_steps: list[CheckedNextStep]
    red_flags: list[CheckedRedFlag]
    stated_confidence: float | None
    legacy: bool = False

    @classmethod
    def stored(cls, data: dict[str, Any] | None) -> CheckedAssessment | None:
        """Read a run's stored answer, also one saved in the old ``Assessment`` shape."""
        if not data:
            return None
        if "legacy" in data or not _has_string_citations(data):
            try:
                return cls.model_validate(data)
            except ValueError:
                pass
        return cls._from_legacy(data)

    @classmethod
    def _from_legacy(cls, data: dict[str, Any]) -> CheckedAssessment:
        def facts(items: Any) -> list[CitedFact]:
            return [
                CitedFact(id="", text=str(f), path="")
                if not isinstance(f, dict)
                else CitedFact(
                    id=str(f.get("id", "")),
                    text=str(f.get("text", "")),
                    path=str(f.get("path", "")),
                )
                for f in items or []
            ]

        def likelihood(value: Any) -> Likelihood:
            return Likelihood(value) if value in set(Likelihood) else Likelihood.LOW

        return cls(
            reasoning_steps=[str(s) for s in data.get("reasoning_steps") or []],
            differential=[
                CheckedDiagnosis(
                    diagnosis=str(d.get("diagnosis", "")),
                    likelihood=likelihood(d.get("likelihood")),
                    supporting_facts=facts(d.get("supporting_facts")),
                )
                for d in data.get("differential") or []
            ],
            next_steps=[
                CheckedNextStep(action=str(s.get("action", "")), based_on=facts(s.get("based_on")))
                for s in data.get("next_steps") or []
            ],
            red_flags=[
                CheckedRedFlag(flag=str(f.get("flag", "")), based_on=facts(f.get("based_on")))
                for f in data.get("red_flags") or []
            ],
            stated_confidence=data.get("stated_confidence"),
            legacy=True,
        )

    def cited_paths(self) -> set[str]:
        """The input fields this answer rests on (the page highlights them)."""
        items = [
            *(f for d in self.differential for f in d.supporting_facts),
            *(f for s in self.next_steps for f in s.based_on),
            *(f for r in self.red_flags for f in r.based_on),
        ]
        return {f.path for f in items if f.path}


def _has_string_citations(data: dict[str, Any]) -> bool:
    groups = [
        *(d.get("supporting_facts") or [] for d in data.get("differential") or []),
        *(s.get("based_on") or [] for s in data.get("next_steps") or []),
        *(r.get("based_on") or [] for r in data.get("red_flags") or []),
    ]
    return any(isinstance(f, str) for group in groups for f in group)


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
    grounded_share: float | None = None  # runs from before the answer gate
    top_code: str | None = None
    gate_reasons: list[str] = Field(
        default_factory=list, description="What the answer gate refused or dropped, and why"
    )
    cited_facts: int | None = None
    verified_facts: int | None = None
    diagnoses: int | None = None
    coded_diagnoses: int | None = None


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

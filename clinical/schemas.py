"""``CaseInput``: the one shape every case is validated into, however it arrived; and the
shapes the case API answers with (they build its JSON and its OpenAPI document alike).

Field names are the contract integrators rely on (DESIGN.md). Units are in the field
names; bounds are wide enough for real extremes and narrow enough to catch unit mix-ups
(a temperature of 98.6 is Fahrenheit, not a fever, and is refused).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bedside.http.fields import IsoDateTime
from reasoning.schemas import CalibrationSummary, CheckedAssessment, SampleSummary

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
OptionalShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=5000)


class Sex(StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Setting(StrEnum):
    EMERGENCY = "emergency"
    INPATIENT = "inpatient"
    OUTPATIENT = "outpatient"


class Priority(StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    UNKNOWN = "unknown"


class CodeSystem(StrEnum):
    """The terminologies whose codes travel with a case, next to its words."""

    SNOMED_CT = "http://snomed.info/sct"
    RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
    LOINC = "http://loinc.org"
    ICD_10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
    ICD_10 = "http://hl7.org/fhir/sid/icd-10"


class Coding(_Strict):
    """A code for an item of the case (as FHIR's Coding): the words stay the case's text."""

    system: CodeSystem
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    display: OptionalShortText = ""


Codings = Annotated[list[Coding], Field(default_factory=list, max_length=10)]


class CodedCondition(_Strict):
    """The codes of one entry of ``past_medical_history`` (named by its text)."""

    condition: ShortText
    codings: Annotated[list[Coding], Field(min_length=1, max_length=10)]


class Criticality(StrEnum):
    """FHIR AllergyIntolerance.criticality: the potential for a serious reaction."""

    LOW = "low"
    HIGH = "high"
    UNABLE_TO_ASSESS = "unable-to-assess"


class Patient(_Strict):
    age_years: int = Field(ge=0, le=130, description="Age in completed years")
    sex: Sex
    pregnant: bool | None = Field(default=None, description="Pregnancy status where relevant")

    @model_validator(mode="after")
    def _pregnancy_matches_sex(self) -> Self:
        if self.pregnant and self.sex == Sex.MALE:
            raise ValueError("pregnant is true but sex is male")
        return self


class Medication(_Strict):
    name: ShortText
    dose: OptionalShortText = Field(default="", description="With its unit, e.g. '500 mg'")
    route: OptionalShortText = ""
    frequency: OptionalShortText = ""
    codings: Codings = Field(description="RxNorm (or SNOMED CT) codes of the medication")


class Allergy(_Strict):
    substance: ShortText
    reaction: OptionalShortText = ""
    severity: Severity = Severity.UNKNOWN
    criticality: Criticality | None = Field(
        default=None, description="FHIR criticality: the potential for a serious reaction"
    )
    codings: Codings = Field(description="SNOMED CT (or RxNorm) codes of the substance")


class Vitals(_Strict):
    heart_rate: int | None = Field(default=None, ge=20, le=300, description="beats/min")
    systolic_bp: int | None = Field(default=None, ge=40, le=300, description="mmHg")
    diastolic_bp: int | None = Field(default=None, ge=20, le=200, description="mmHg")
    respiratory_rate: int | None = Field(default=None, ge=4, le=80, description="breaths/min")
    temperature_c: float | None = Field(default=None, ge=25, le=45, description="°C")
    spo2: int | None = Field(default=None, ge=30, le=100, description="% oxygen saturation")
    weight_kg: float | None = Field(default=None, gt=0, le=500, description="kg")

    @model_validator(mode="after")
    def _diastolic_below_systolic(self) -> Self:
        if (
            self.systolic_bp is not None
            and self.diastolic_bp is not None
            and self.diastolic_bp >= self.systolic_bp
        ):
            raise ValueError("diastolic_bp must be lower than systolic_bp")
        return self


class Lab(_Strict):
    name: ShortText
    loinc: Annotated[str, StringConstraints(pattern=r"^\d{1,7}-\d$")] | None = None
    value: float | Annotated[str, StringConstraints(min_length=1, max_length=100)]
    unit: OptionalShortText = Field(default="", description="UCUM where possible, e.g. 'ng/mL'")
    reference_range: OptionalShortText = ""
    interpretation: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = Field(
        default="",
        description="The laboratory's flag (HL7 v3 ObservationInterpretation), "
        "e.g. 'H', 'HH' (critically high), 'L', 'LL', 'A', 'N'",
    )
    codings: Codings = Field(description="Codes of the test beyond `loinc` (SNOMED CT)")

    @model_validator(mode="after")
    def _numeric_values_carry_a_unit(self) -> Self:
        if isinstance(self.value, float) and not self.unit:
            raise ValueError("a numeric lab value needs its unit")
        return self


class CaseInput(_Strict):
    external_id: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] = ""
    priority: Priority = Priority.ROUTINE
    patient: Patient
    setting: Setting | None = None
    chief_complaint: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ]
    history_of_present_illness: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=5000)
    ] = ""
    past_medical_history: list[ShortText] = Field(default_factory=list, max_length=50)
    past_medical_history_codings: list[CodedCondition] = Field(
        default_factory=list,
        max_length=50,
        description="SNOMED CT / ICD-10 codes of entries of `past_medical_history`",
    )
    medications: list[Medication] = Field(default_factory=list, max_length=100)
    allergies: list[Allergy] = Field(default_factory=list, max_length=50)
    # Always an object (its readings null where not taken), however the case arrived.
    vitals: Vitals = Field(default_factory=Vitals)
    labs: list[Lab] = Field(default_factory=list, max_length=200)
    question: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ]

    @field_validator("vitals", mode="before")
    @classmethod
    def _no_vitals_is_an_empty_object(cls, value: Any) -> Any:
        return {} if value is None else value

    @model_validator(mode="after")
    def _codings_name_a_condition_of_the_history(self) -> Self:
        for coded in self.past_medical_history_codings:
            if coded.condition not in self.past_medical_history:
                raise ValueError(
                    f"past_medical_history_codings names '{coded.condition}', "
                    "which is not in past_medical_history"
                )
        return self


class Decision(StrEnum):
    ACCEPT = "accept"
    MODIFY = "modify"
    REJECT = "reject"


class ReviewedDiagnosis(_Strict):
    diagnosis: ShortText
    likelihood: Annotated[str, StringConstraints(pattern="^(high|moderate|low)$")] = "moderate"


class ReviewInput(_Strict):
    """A clinician's review of the model's answer (form, REST or CDS Hooks feedback).

    ``modify`` carries the clinician's own differential and/or plan; ``modify`` and
    ``reject`` need a reason code and a reason in words.
    """

    decision: Decision
    reason_code: OptionalShortText = Field(default="", validate_default=True)
    reason_text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = Field(
        default="", validate_default=True
    )
    differential: list[ReviewedDiagnosis] = Field(default_factory=list, max_length=10)
    plan: list[ShortText] = Field(default_factory=list, max_length=10)

    @field_validator("reason_code")
    @classmethod
    def _known_reason_code(cls, code: str, info: ValidationInfo) -> str:
        # Imported here: the vocabulary file is read once, on first use.
        from clinical.reasons import reason_codes

        if code and code not in reason_codes():
            raise ValueError(
                "must be a CDS Hooks non-adherence reason code "
                "(http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes)"
            )
        decision = info.data.get("decision")
        if not code and decision in (Decision.MODIFY, Decision.REJECT):
            raise ValueError(f"a {decision.value} needs a reason code")
        return code

    @field_validator("reason_text")
    @classmethod
    def _reason_in_words(cls, text: str, info: ValidationInfo) -> str:
        decision = info.data.get("decision")
        if not text and decision in (Decision.MODIFY, Decision.REJECT):
            raise ValueError(f"a {decision.value} needs the reason in words")
        return text

    @field_validator("differential", "plan")
    @classmethod
    def _only_when_modifying(cls, value: list, info: ValidationInfo) -> list:
        if value and info.data.get("decision") not in (Decision.MODIFY, None):
            raise ValueError("is only taken with decision 'modify'")
        return value

    @model_validator(mode="after")
    def _modify_says_what_instead(self) -> Self:
        if self.decision == Decision.MODIFY and not (self.differential or self.plan):
            raise PydanticCustomError(
                "modify_without_content", "a modify needs the clinician's own differential or plan"
            )
        return self


# --- What the case API answers with ------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


Uri = Annotated[str, Field(json_schema_extra={"format": "uri"})]
CaseStatusName = Literal["queued", "running", "completed", "failed"]


class CaseSummaryLinks(_Response):
    self: Uri


class CaseLinks(_Response):
    self: Uri
    reviews: Uri


class _CaseFields(_Response):
    id: uuid.UUID
    external_id: str
    priority: Priority
    status: CaseStatusName
    status_detail: str
    created_at: IsoDateTime
    updated_at: IsoDateTime
    started_at: IsoDateTime | None
    finished_at: IsoDateTime | None
    attempts: int
    retries: int
    next_retry_at: IsoDateTime | None


class FinishedCase(_Response):
    id: uuid.UUID
    external_id: str
    status: Literal["completed", "failed"]
    finished_at: IsoDateTime | None
    links: CaseSummaryLinks = Field(description="`self`: the case's absolute URL, to fetch it")


class CaseFinishedEvent(_Response):
    """The completion callback's body: which case finished, no patient data."""

    event: Literal["case.completed", "case.failed"]
    case: FinishedCase


class CaseSummary(_CaseFields):
    """A case in a list: its status, without its input or answer."""

    links: CaseSummaryLinks


class CasePage(_Response):
    count: int
    next: Uri | None
    previous: Uri | None
    results: list[CaseSummary]


class Confidence(_Response):
    value: float | None = Field(description="Calibrated where a calibration is in force.")
    raw: float | None = Field(description="Before calibration.")
    method: str
    components: dict[str, Any]
    calibration: CalibrationSummary | None = Field(
        description="The calibration in force when the run finished, stored with it."
    )
    validation_note: str | None = Field(
        description="How answers at this confidence fared on this model's validation set, "
        "as stored when the run finished (a later report does not change it)."
    )


class ModelInfo(_Response):
    name: str
    revision: str


class PromptInfo(_Response):
    version: str
    sha256: str


class Usage(_Response):
    prompt_tokens: int
    completion_tokens: int


class CaseResult(_Response):
    """The latest completed run; null until the case is completed."""

    assessment: CheckedAssessment | None = Field(
        description="The checked answer the clinician sees: only findings resting on verified "
        "case facts, each fact with the input field it came from; the model's raw output is "
        "in the run record for auditors."
    )
    reasoning_trace: str
    trace_source: str
    confidence: Confidence
    model: ModelInfo
    prompt: PromptInfo
    usage: Usage
    latency_ms: int
    samples: list[SampleSummary]
    samples_usable: int = Field(description="Samples that passed the answer gate.")
    samples_total: int
    unusable_reasons: list[str] = Field(
        description="Why each other sample was not usable, one line each."
    )


class ModifiedAssessment(_Response):
    differential: list[ReviewedDiagnosis]
    plan: list[str]


class Review(_Response):
    id: int
    created_at: IsoDateTime
    reviewer: str
    decision: Decision
    reason_code: str
    reason_display: str
    reason_text: str
    modified_assessment: ModifiedAssessment | None
    source: Literal["form", "api", "cds-hooks"]
    run_id: int


class ReviewList(_Response):
    results: list[Review]


class FhirRefusal(_Response):
    loc: list[str | int]
    msg: str


class FhirSummary(_Response):
    """Only on a FHIR submission: what was read and ignored."""

    encounter: str
    mapped: dict[str, int]
    ignored: dict[str, int]
    skipped: dict[str, int]
    refused: list[FhirRefusal] = Field(
        default_factory=list,
        description="Values read but left out of the case (a unit that cannot be converted), "
        "each with its place in the Bundle and the reason.",
    )


class EarlyWarningComponent(_Response):
    parameter: str = Field(description="The vital sign's field in `input.vitals`.")
    label: str
    value: int | float
    unit: str
    points: int | None = Field(description="Its points in the score; null where a score has none.")


class EarlyWarningMissing(_Response):
    parameter: str
    label: str
    assumed: str | None = Field(
        description="What the score took in its place (NEWS2: 'alert', 'air'); null: not scored."
    )


class EarlyWarningScore(_Response):
    """A score Bedside computes itself from the vital signs, with no model."""

    name: Literal["NEWS2", "qSOFA", "Shock index"]
    score: int | float
    risk: Literal["low", "low-medium", "medium", "high", "normal", "elevated"]
    partial: bool = Field(
        description="A measured parameter is not recorded: the true score may be higher."
    )
    components: list[EarlyWarningComponent]
    missing: list[EarlyWarningMissing]


class Case(_CaseFields):
    """One case: status, the validated input, and when completed the answer."""

    links: CaseLinks
    input: CaseInput
    early_warning: list[EarlyWarningScore] = Field(
        description="NEWS2 (RCP 2017, SpO₂ scale 1), qSOFA and the shock index from the "
        "vitals, on every case from intake on; empty when no vital sign they use is recorded."
    )
    early_warning_not_scored: list[str] = Field(
        description="Why a score is absent, e.g. 'no vital signs recorded'."
    )
    early_warning_alert: bool = Field(
        description="NEWS2 7 or more, a single NEWS2 parameter scoring 3, or qSOFA 2 or more: "
        "assess the patient now, whatever the model's answer says."
    )
    result: CaseResult | None
    failure_reason: str | None
    latest_review: Review | None
    fhir: FhirSummary | None = None

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if self.fhir is None:  # the key is there only on a FHIR submission
            del data["fhir"]
        return data

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
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
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


class LabStatus(StrEnum):
    """Where a result stands (FHIR Observation.status, the values a clinician meets)."""

    FINAL = "final"
    PRELIMINARY = "preliminary"
    CORRECTED = "corrected"
    PENDING = "pending"
    CANCELLED = "cancelled"


# Lab statuses that have no result to show yet (or ever).
NO_RESULT = frozenset({LabStatus.PENDING, LabStatus.CANCELLED})
# Words a result's status is often typed as, in the value's place.
STATUS_WORDS = frozenset(
    {"pending", "awaited", "awaiting", "to follow", "tba", "sent", "in progress", "preliminary",
     "prelim", "cancelled", "canceled", "not done", "requested", "ordered"}
)  # fmt: skip

# Normal body temperatures typed in °F (25 to 45 °C is 77 to 113 °F): said so, not just refused.
FAHRENHEIT_BODY_RANGE = (77.0, 113.0)


def fahrenheit_to_celsius(fahrenheit: float) -> float:
    return round((fahrenheit - 32) * 5 / 9, 1)


def _number_text(number: float) -> str:
    return f"{number:g}"


def in_clinical_words(
    label: str, unit: str, low: float, high: float, *, whole: bool, low_exclusive: bool = False
) -> WrapValidator:
    """Refusals of a measured value that say, in a clinician's words, what is expected:
    "Heart rate is a whole number, from 20 to 300 beats/min" (the bounds themselves are the
    field's own, so the OpenAPI document states them too)."""
    kind = "a whole number" if whole else "a number"
    span = (
        f"above {_number_text(low)}, up to {_number_text(high)} {unit}"
        if low_exclusive
        else f"from {_number_text(low)} to {_number_text(high)} {unit}"
    )

    def clinical_words(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            error = exc.errors()[0]["type"]
            if error in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
                raise PydanticCustomError(
                    "outside_physiologic_range",
                    "{label} must be {span}: this is outside the physiologic range",
                    {"label": label, "span": span},
                ) from None
            raise PydanticCustomError(
                "not_a_measurement",
                "{label} is {kind}, {span}",
                {"label": label, "kind": kind, "span": span},
            ) from None

    return WrapValidator(clinical_words)


def _temperature(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """98.6 in the °C field is a temperature in °F: said so, with its value in °C."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return handler(value)
    low, high = FAHRENHEIT_BODY_RANGE
    if low <= number <= high:
        raise PydanticCustomError(
            "temperature_in_fahrenheit",
            "Temperature is in °C: this looks like °F, which is {celsius} °C",
            {"celsius": f"{fahrenheit_to_celsius(number):.1f}"},
        )
    return handler(value)


AgeYears = Annotated[
    int, Field(ge=0, le=130), in_clinical_words("Age", "years", 0, 130, whole=True)
]
HeartRate = Annotated[
    int, Field(ge=20, le=300), in_clinical_words("Heart rate", "beats/min", 20, 300, whole=True)
]
SystolicBp = Annotated[
    int,
    Field(ge=40, le=300),
    in_clinical_words("Systolic blood pressure", "mmHg", 40, 300, whole=True),
]
DiastolicBp = Annotated[
    int,
    Field(ge=20, le=200),
    in_clinical_words("Diastolic blood pressure", "mmHg", 20, 200, whole=True),
]
RespiratoryRate = Annotated[
    int,
    Field(ge=4, le=80),
    in_clinical_words("Respiratory rate", "breaths/min", 4, 80, whole=True),
]
TemperatureC = Annotated[
    float,
    Field(ge=25, le=45),
    in_clinical_words("Temperature", "°C", 25, 45, whole=False),
    WrapValidator(_temperature),
]
Spo2 = Annotated[int, Field(ge=30, le=100), in_clinical_words("SpO₂", "%", 30, 100, whole=True)]
WeightKg = Annotated[
    float,
    Field(gt=0, le=500),
    in_clinical_words("Weight", "kg", 0, 500, whole=False, low_exclusive=True),
]


def _lab_value_words(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "not_a_lab_value",
            "A result is a number (e.g. 2.3) or a short qualitative result (e.g. positive), "
            "up to 100 characters",
        ) from None


LabValue = Annotated[
    float | Annotated[str, StringConstraints(min_length=1, max_length=100)],
    WrapValidator(_lab_value_words),
]

# Pregnancy outside these ages is refused as implausible (a typing slip far more often
# than a case report); the history is the place for the exception.
PREGNANCY_AGES = (8, 65)


class Patient(_Strict):
    age_years: AgeYears = Field(description="Age in completed years")
    sex: Sex
    pregnant: bool | None = Field(default=None, description="Pregnancy status where relevant")

    @field_validator("pregnant")
    @classmethod
    def _pregnancy_is_plausible(cls, pregnant: bool | None, info: ValidationInfo) -> bool | None:
        if not pregnant:
            return pregnant
        if info.data.get("sex") == Sex.MALE:
            raise PydanticCustomError(
                "pregnant_male",
                "A patient recorded as male is not pregnant: check the sex or the pregnancy",
            )
        age = info.data.get("age_years")
        low, high = PREGNANCY_AGES
        if age is not None and not low <= age <= high:
            raise PydanticCustomError(
                "pregnancy_age",
                "Pregnancy is implausible at this age (recorded from {low} to {high} years): "
                "check the age or the pregnancy",
                {"low": low, "high": high},
            )
        return pregnant


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
    heart_rate: HeartRate | None = Field(default=None, description="beats/min")
    systolic_bp: SystolicBp | None = Field(default=None, description="mmHg")
    diastolic_bp: DiastolicBp | None = Field(default=None, description="mmHg")
    respiratory_rate: RespiratoryRate | None = Field(default=None, description="breaths/min")
    temperature_c: TemperatureC | None = Field(default=None, description="°C")
    spo2: Spo2 | None = Field(default=None, description="% oxygen saturation")
    weight_kg: WeightKg | None = Field(default=None, description="kg")

    @field_validator("diastolic_bp")
    @classmethod
    def _diastolic_below_systolic(cls, diastolic: int | None, info: ValidationInfo) -> int | None:
        systolic = info.data.get("systolic_bp")
        if diastolic is not None and systolic is not None and diastolic >= systolic:
            raise PydanticCustomError(
                "diastolic_not_below_systolic",
                "Diastolic blood pressure must be lower than systolic: "
                "check the two are not swapped",
            )
        return diastolic


class Lab(_Strict):
    name: ShortText
    loinc: Annotated[str, StringConstraints(pattern=r"^\d{1,7}-\d$")] | None = None
    status: LabStatus = Field(
        default=LabStatus.FINAL,
        description="Where the result stands; a pending or cancelled result has no value.",
    )
    value: LabValue | None = Field(
        default=None,
        description="A number (with its unit), or a qualitative result without a unit "
        "(e.g. 'positive'). Required unless the status is pending or cancelled.",
    )
    unit: OptionalShortText = Field(
        default="", validate_default=True, description="UCUM where possible, e.g. 'ng/mL'"
    )
    reference_range: OptionalShortText = ""
    interpretation: Annotated[str, StringConstraints(strip_whitespace=True, max_length=20)] = Field(
        default="",
        description="The laboratory's flag (HL7 v3 ObservationInterpretation), "
        "e.g. 'H', 'HH' (critically high), 'L', 'LL', 'A', 'N'",
    )
    codings: Codings = Field(description="Codes of the test beyond `loinc` (SNOMED CT)")

    @field_validator("value")
    @classmethod
    def _value_matches_status(cls, value: float | str | None, info: ValidationInfo) -> Any:
        status = info.data.get("status", LabStatus.FINAL)
        if isinstance(value, str) and " ".join(value.lower().split()) in STATUS_WORDS:
            raise PydanticCustomError(
                "status_as_value",
                "This is the result's status, not its value: leave the value empty "
                "and set the status (e.g. pending)",
            )
        if value is not None and status in NO_RESULT:
            raise PydanticCustomError(
                "value_for_result_not_back",
                "A {status} result has no value: leave it empty, or set the status to "
                "preliminary or final",
                {"status": status.value if isinstance(status, LabStatus) else status},
            )
        return value

    @field_validator("unit")
    @classmethod
    def _unit_goes_with_a_number(cls, unit: str, info: ValidationInfo) -> str:
        value = info.data.get("value")
        if isinstance(value, float) and not unit:
            raise PydanticCustomError(
                "numeric_value_without_unit", "A numeric result needs its unit (e.g. ng/mL)"
            )
        if isinstance(value, str) and unit:
            raise PydanticCustomError(
                "unit_with_text_value",
                "A result with a unit is a number (e.g. 2.3); a qualitative result "
                "(e.g. positive) has no unit",
            )
        return unit

    @model_validator(mode="after")
    def _result_or_pending(self) -> Self:
        if self.value is None and self.status not in NO_RESULT:
            raise PydanticCustomError(
                "result_missing",
                "Enter the result, or set the status to pending if it is not back yet",
            )
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


EMERGENCY_REASON_MIN = 10  # characters, once trimmed: "covering" alone says nothing
EMERGENCY_REASON_MAX = 1000


def trimmed_at_least(minimum: int, *, error: str, message: str) -> AfterValidator:
    """Annotates free text that must say something (``Annotated[str, trimmed_at_least(...)]``):
    it is trimmed, then refused with ``error`` and ``message`` (where ``{minimum}`` is filled
    in) when shorter than ``minimum`` characters."""

    def check(text: str) -> str:
        text = text.strip()
        if len(text) < minimum:
            raise PydanticCustomError(error, message, {"minimum": minimum})
        return text

    return AfterValidator(check)


class EmergencyAccessInput(_Strict):
    """Why a clinician (or an integration) opens a case that is not theirs: break-glass.

    The reason is what the auditor reviews the access against, so it must say something:
    at least ``EMERGENCY_REASON_MIN`` characters once trimmed.
    """

    reason: Annotated[
        str,
        trimmed_at_least(
            EMERGENCY_REASON_MIN,
            error="reason_too_short",
            message="state why you need this case, in at least {minimum} characters (for "
            "example: covering the emergency department, patient deteriorating)",
        ),
    ] = Field(
        max_length=EMERGENCY_REASON_MAX,
        description="Why this case must be opened now, in your words (at least "
        f"{EMERGENCY_REASON_MIN} characters); reviewed by an auditor.",
    )


class EmergencyReviewInput(_Strict):
    """An auditor's own note on a break-glass access they mark reviewed."""

    note: Annotated[
        str,
        trimmed_at_least(
            EMERGENCY_REASON_MIN,
            error="note_too_short",
            message="write your own review note, in at least {minimum} characters (what you "
            "checked, and whether the access was justified)",
        ),
    ] = Field(max_length=EMERGENCY_REASON_MAX)


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


class CaseAccess(_Response):
    """How the caller may read this case, when it is not theirs by the usual rule."""

    kind: Literal["emergency"] = Field(
        description="`emergency`: break-glass access granted to this caller for a stated "
        "reason; read only, audited, reviewed by an auditor."
    )
    emergency_access_id: int
    until: IsoDateTime = Field(description="When the access ends (UTC).")


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
    access: CaseAccess | None = Field(
        default=None,
        description="Only when the caller reads this case under emergency (break-glass) "
        "access: until when. Absent for a submitter's own case and for auditors.",
    )

    def as_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        if self.fhir is None:  # the key is there only on a FHIR submission
            del data["fhir"]
        if self.access is None:  # and this one only under emergency access
            del data["access"]
        return data


class EmergencyAccessLinks(_Response):
    case: Uri


class EmergencyAccessGrant(_Response):
    """A break-glass grant: who may read which case, why, and until when."""

    id: int
    case_id: uuid.UUID
    person: str
    reason: str
    granted_at: IsoDateTime
    expires_at: IsoDateTime
    links: EmergencyAccessLinks

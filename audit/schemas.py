"""Query parameters of the audit API and screens, validated like any other input, and the
shapes the audit API answers with (they build its JSON and its OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.models import Outcome
from bedside.http.fields import IsoDateTime
from reasoning.confidence import Band

EVENT_SORTS = ("id", "recorded_at", "actor_label", "role", "action", "code", "outcome", "case_id")


class EventQuery(BaseModel):
    """``GET /api/v1/audit/events/`` filters: a time range, who, what, which case."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = Field(default=None, max_length=150)
    code: str | None = Field(default=None, max_length=50)
    case: uuid.UUID | None = None
    patient: str | None = Field(
        default=None, max_length=200, description="the case's external id (whole, case ignored)"
    )
    outcome: Outcome | None = None
    sort: str = "id"

    @field_validator("since", "until")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        # A screen's datetime-local field carries no zone: Bedside's times are UTC.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value.removeprefix("-") not in EVENT_SORTS:
            raise ValueError(f"sort by one of {', '.join(EVENT_SORTS)} (prefix - to reverse)")
        return value


# The confidence filter: a band (the clinician's page's, from ``reasoning.confidence``), or
# "none" for cases without a confidence (no answer yet, or a failed one).
NO_CONFIDENCE = "none"


class SubmittingSystem(StrEnum):
    PERSON = "person"  # signed in and used a screen or the API with a session
    API = "api"  # an integration key (an EHR)
    CDS_HOOKS = "cds-hooks"  # an EHR's CDS Hooks call, for the clinician it names


CASE_SORTS = (
    "created_at",
    "priority",
    "submitter",
    "system",
    "status",
    "model_revision",
    "confidence",
    "decision",
)


class CaseListQuery(BaseModel):
    """The auditor's case list: filters, one sort column (``-`` for descending), a page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: date | None = None
    until: date | None = None  # inclusive: the whole day
    clinician: str | None = Field(default=None, max_length=150)
    system: SubmittingSystem | None = None
    model_revision: str | None = Field(default=None, max_length=200)
    confidence: Band | Literal["none"] | None = None
    decision: str | None = Field(default=None, pattern="^(accept|modify|reject|none)$")
    status: str | None = Field(default=None, pattern="^(queued|running|completed|failed)$")
    overridden: bool | None = None  # modified or rejected by any review, not only the latest
    sort: str = "-created_at"
    page: int = Field(default=1, ge=1)

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value.removeprefix("-") not in CASE_SORTS:
            raise ValueError(f"sort by one of {', '.join(CASE_SORTS)} (prefix - to reverse)")
        return value

    @model_validator(mode="after")
    def _range_in_order(self) -> CaseListQuery:
        if self.since and self.until and self.until < self.since:
            raise ValueError("'until' is before 'since'")
        return self


class EmergencyAccessQuery(BaseModel):
    """The break-glass review list: which accesses (unreviewed by default), a page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    state: Literal["unreviewed", "reviewed", "all"] = "unreviewed"
    page: int = Field(default=1, ge=1)


class PeopleQuery(BaseModel):
    """The people screen: part of a name (username, first or last name), a page."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=150)
    page: int = Field(default=1, ge=1)


# --- What the audit API answers with -----------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuditEvent(_Response):
    id: int
    recorded_at: IsoDateTime
    actor: str
    actor_id: int | None
    role: str
    action: Literal["C", "R", "U", "D", "E"] = Field(description="FHIR AuditEvent.action.")
    code: str
    outcome: Outcome
    object_type: str
    object_id: str
    case_id: uuid.UUID | None
    source_address: str | None
    request_id: str
    details: dict[str, Any]
    prev_hash: str | None = Field(
        description="The previous event's hash; null for an event committed after this "
        "read linked the chain (the sequencer links it within a second)."
    )
    hash: str | None = Field(description="This event's hash; null as for prev_hash.")


class AuditEventPage(_Response):
    count: int
    next: str | None = Field(json_schema_extra={"format": "uri"})
    previous: str | None = Field(json_schema_extra={"format": "uri"})
    results: list[AuditEvent]


class AuditCheckpoint(BaseModel):
    """The chain's head as ``manage.py audit_checkpoint`` wrote it."""

    head_id: int
    head_hash: str
    count: int
    created_at: str
    signature: str = Field(default="", description="HMAC-SHA256, when a key is set.")


class AuditChainBreak(_Response):
    event_id: int
    problem: str = Field(description="edited, inserted, removed or truncated.")
    reason: str


class AuditChainReport(_Response):
    ok: bool
    events_checked: int
    head_id: int | None
    head_hash: str
    broken_id: int | None = Field(description="The first event that fails.")
    problem: str = Field(description="edited, inserted, removed or truncated; empty when ok.")
    reason: str
    checkpoint: AuditCheckpoint | None
    seconds: float
    breaks: list[AuditChainBreak] = Field(
        description="Every broken event the walk found (it goes on past the first), up to 1,000."
    )
    breaks_total: int = Field(description="How many broken events, listed or not.")


class InvestigationQuery(BaseModel):
    """One search across cases and events: "who viewed patient X's case last week, and did
    anyone override the answer?". Text fields other than the patient match partly."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    patient: str | None = Field(
        default=None,
        max_length=200,
        description="the case's external id (whole, case ignored) or its Bedside case id",
    )
    person: str | None = Field(default=None, max_length=150, description="part of a name")
    viewed_by: str | None = Field(default=None, max_length=150, description="part of a name")
    overridden: bool | None = None  # ever modified or rejected, by any review
    since: date | None = None
    until: date | None = None  # inclusive: the whole day
    code: str | None = Field(default=None, max_length=50, description="part of an event code")
    page: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _range_in_order(self) -> InvestigationQuery:
        if self.since and self.until and self.until < self.since:
            raise ValueError("'until' is before 'since'")
        return self

    @property
    def searched(self) -> bool:
        return bool(
            self.patient
            or self.person
            or self.viewed_by
            or self.overridden
            or self.since
            or self.until
            or self.code
        )

"""Query parameters of the audit API and screens, validated like any other input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.models import Outcome
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

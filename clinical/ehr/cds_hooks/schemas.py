"""The CDS Hooks 2.0 wire shapes: the hook request, the cards answered, the feedback on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SUMMARY_MAX = 140


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Incoming(BaseModel):
    # CDS Hooks 2.0: a service ignores the fields it does not know (an EHR may send
    # `fhirAuthorization.id_token`, extensions of its own, fields of a later version). The
    # fields Bedside reads are still checked strictly.
    model_config = ConfigDict(extra="ignore")


class FhirAuthorization(_Incoming):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class HookContext(BaseModel):
    # Each hook adds its own context fields; those we read are checked, others kept.
    model_config = ConfigDict(extra="allow")

    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1, max_length=64)
    encounterId: str | None = None
    draftOrders: dict[str, Any] | None = None


class HookRequest(_Incoming):
    hook: str
    hookInstance: str = Field(min_length=1, max_length=64)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    extension: dict[str, Any] | None = None


class Coding(_Shape):
    code: str
    system: str | None = None
    display: str | None = None


class FeedbackCoding(_Incoming):
    code: str
    system: str | None = None
    display: str | None = None


class Link(_Shape):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None  # CDS Hooks 2.0 spells it so


class Source(_Shape):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Card(BaseModel):
    model_config = ConfigDict(extra="allow")  # suggestions, selectionBehavior...

    uuid: str | None = None
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class HookResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cards: list[Card]
    systemActions: list[dict[str, Any]] | None = None


class OverrideReason(_Incoming):
    reason: FeedbackCoding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class FeedbackItem(_Incoming):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @field_validator("acceptedSuggestions")
    @classmethod
    def _suggestions_have_ids(cls, value: list[dict[str, Any]] | None) -> Any:
        if value and not all(isinstance(s.get("id"), str) for s in value):
            raise ValueError("each accepted suggestion needs its id")
        return value


class Feedback(_Incoming):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=50)

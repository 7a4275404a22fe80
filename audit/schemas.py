"""Query parameters of the audit API and screens, validated like any other input."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from audit.models import Outcome


class EventQuery(BaseModel):
    """``GET /api/v1/audit/events/`` filters: a time range, who, what, which case."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = Field(default=None, max_length=150)
    code: str | None = Field(default=None, max_length=50)
    case: uuid.UUID | None = None
    outcome: Outcome | None = None

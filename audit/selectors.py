"""Reads of the audit trail that grow complex: filtered event lists."""

from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEvent
from audit.schemas import EventQuery


def events_filtered(query: EventQuery) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if query.since:
        events = events.filter(recorded_at__gte=query.since)
    if query.until:
        events = events.filter(recorded_at__lt=query.until)
    if query.actor:
        events = events.filter(actor_label=query.actor)
    if query.code:
        events = events.filter(code=query.code)
    if query.case:
        events = events.filter(case_id=query.case)
    if query.outcome:
        events = events.filter(outcome=query.outcome.value)
    return events

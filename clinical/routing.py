"""Which queue a case's task goes to: `stat` cases to their own queue, ahead of routine.

A Celery router, so every sender (intake, re-run, the sweeper, retries) routes the same way.
A sender that knows the case's priority passes it in the message's ``bedside_priority``
header: intake and re-run do, so the hot path asks the database nothing.
For a message without it (the sweeper, an older sender) the router looks the priority up by
the case id the task carries. With no stat queue configured it does nothing and costs nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from clinical.schemas import Priority

logger = logging.getLogger(__name__)

RUN_CASE = "reasoning.run_case"
# The case's priority as its sender knew it, in the message's headers: read by the router
# instead of the case row. Only a priority Bedside knows counts; anything else is looked up.
PRIORITY_HEADER = "bedside_priority"
PRIORITIES = frozenset(p.value for p in Priority)


def stat_queue() -> str:
    """The stat queue, or "" when stat cases share the routine queue."""
    queue = settings.BEDSIDE_STAT_QUEUE
    return "" if queue == settings.CELERY_TASK_DEFAULT_QUEUE else queue


def route_case_task(
    name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any = None, **_: Any
) -> dict[str, str] | None:
    if name != RUN_CASE or not stat_queue():
        return None
    priority = _priority_header(options)
    if priority is None:
        priority = _priority_of_case(args, kwargs)
    if priority in settings.BEDSIDE_STAT_PRIORITIES:
        return {"queue": stat_queue()}
    return None


def priority_headers(priority: str) -> dict[str, str]:
    """The headers a sender that knows the case's priority sends its task with."""
    return {PRIORITY_HEADER: priority}


def _priority_header(options: dict[str, Any]) -> str | None:
    headers = options.get("headers") or {}
    priority = headers.get(PRIORITY_HEADER) if isinstance(headers, dict) else None
    return priority if priority in PRIORITIES else None


def _priority_of_case(args: Any, kwargs: Any) -> str | None:
    case_id = (args or [None])[0] if args else (kwargs or {}).get("case_id")
    if case_id is None:
        return None
    from clinical.models import Case

    try:
        priority = Case.objects.filter(id=case_id).values_list("priority", flat=True).first()
    except (DatabaseError, ValueError):
        # The routine queue is consumed too: a case routed there is late, never lost.
        logger.warning("case %s: priority unknown, sent to the routine queue", case_id)
        return None
    return priority

"""Which queue a case's task goes to: `stat` cases to their own queue, ahead of routine.

A Celery router, so every sender (intake, re-run, the sweeper, retries) routes the same way
without knowing of it. It looks the priority up by the case id the task carries; with no
stat queue configured it does nothing and costs nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError

logger = logging.getLogger(__name__)

RUN_CASE = "reasoning.run_case"


def stat_queue() -> str:
    """The stat queue, or "" when stat cases share the routine queue."""
    queue = settings.BEDSIDE_STAT_QUEUE
    return "" if queue == settings.CELERY_TASK_DEFAULT_QUEUE else queue


def route_case_task(
    name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any = None, **_: Any
) -> dict[str, str] | None:
    if name != RUN_CASE or not stat_queue():
        return None
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
    if priority in settings.BEDSIDE_STAT_PRIORITIES:
        return {"queue": stat_queue()}
    return None

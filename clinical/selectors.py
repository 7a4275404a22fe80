"""Reads of the cases app used in more than one place."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from clinical.models import Case, CaseStatus, EmergencyAccess
from clinical.routing import stat_queue


def cases_stale(*, older_than_s: int, limit: int = 500) -> list[uuid.UUID]:
    """Cases that nothing is working on, oldest first: left `queued` with no retry due (the
    broker was down at commit time, or a message was lost), or `running` under a lease that
    has expired (its worker died and the broker has not redelivered; with Redis that waits
    for the visibility timeout)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=older_than_s)
    forgotten = Q(status=CaseStatus.QUEUED, updated_at__lt=cutoff) & ~Q(next_retry_at__gte=cutoff)
    abandoned = Q(status=CaseStatus.RUNNING, claimed_until__lt=now)
    return list(
        Case.objects.filter(forgotten | abandoned)
        .order_by("created_at")
        .values_list("id", flat=True)[:limit]
    )


# --- Where a queued case stands (the case page, while it waits) -----------------------------

TURNAROUND_SAMPLE = 20  # recent answered cases the wait estimate is the median of
TURNAROUND_WINDOW = timedelta(days=1)  # older ones say little about today's load


def _lane(priorities: list[str], stat_lane: bool) -> Q:
    """The cases served in the same turn: stat and urgent ones ahead, when they have their
    own queue; every case in one line otherwise."""
    if not stat_queue():
        return Q()
    return Q(priority__in=priorities) if stat_lane else ~Q(priority__in=priorities)


def in_stat_lane(case: Case) -> bool:
    return bool(stat_queue()) and case.priority in settings.BEDSIDE_STAT_PRIORITIES


def cases_ahead(case: Case) -> int:
    """Queued cases that a worker takes before this one: in its own lane, those submitted
    earlier; for a routine case, also every queued stat or urgent one."""
    priorities = list(settings.BEDSIDE_STAT_PRIORITIES)
    queued = Case.objects.filter(status=CaseStatus.QUEUED).exclude(id=case.id)
    earlier = queued.filter(_lane(priorities, in_stat_lane(case))).filter(
        Q(created_at__lt=case.created_at) | Q(created_at=case.created_at, id__lt=case.id)
    )
    ahead = earlier.count()
    if stat_queue() and not in_stat_lane(case):
        ahead += queued.filter(_lane(priorities, True)).count()
    return ahead


def recent_turnaround_s(case: Case) -> tuple[int, int] | None:
    """(median seconds from submission to answer, cases it is the median of) over the
    latest answered cases of the case's lane in the last day; None when there are none."""
    priorities = list(settings.BEDSIDE_STAT_PRIORITIES)
    recent = (
        Case.objects.filter(
            _lane(priorities, in_stat_lane(case)),
            status=CaseStatus.COMPLETED,
            finished_at__gte=timezone.now() - TURNAROUND_WINDOW,
        )
        .order_by("-finished_at")
        .values_list("created_at", "finished_at")[:TURNAROUND_SAMPLE]
    )
    durations = sorted(
        (finished - created).total_seconds() for created, finished in recent if finished
    )
    if not durations:
        return None
    return int(median(durations)), len(durations)


# --- Break-glass ----------------------------------------------------------------------------


def emergency_access_active(
    *, case_id: uuid.UUID | str, person: Any, now: datetime | None = None
) -> EmergencyAccess | None:
    """The person's emergency access to the case in force at ``now`` (the one that lasts
    longest, if they stated a reason twice), or None."""
    if not getattr(person, "is_authenticated", False):
        return None
    now = now or timezone.now()
    return (
        EmergencyAccess.objects.filter(
            case_id=case_id, person=person, granted_at__lte=now, expires_at__gt=now
        )
        .order_by("-expires_at", "-id")
        .first()
    )

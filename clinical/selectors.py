"""Reads of the cases app used in more than one place."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from clinical.models import Case, CaseStatus


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

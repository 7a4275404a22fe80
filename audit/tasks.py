"""The chain's sequencer on the worker's clock: links what has committed (thin; the work is
``audit.services.chain_pending``)."""

from __future__ import annotations

from celery import shared_task

from audit import services


@shared_task(name="audit.chain_pending", ignore_result=True, time_limit=60, soft_time_limit=50)
def chain_pending_task() -> int:
    return services.chain_pending().chained

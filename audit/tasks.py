"""Celery beat's audit tasks (thin; the work is in ``audit.services``): the chain's sequencer
on the worker's clock, linking what has committed (``chain_pending``), and a signed
checkpoint of the chain's head every BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S, so a chain rebuilt
later fails against the last one."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from audit import services


@shared_task(name="audit.chain_pending", ignore_result=True, time_limit=60, soft_time_limit=50)
def chain_pending_task() -> int:
    return services.chain_pending().chained


@shared_task(name="audit.write_checkpoint", ignore_result=True, time_limit=600)
def write_checkpoint_task() -> str:
    path = services.checkpoint_write(
        directory=settings.BEDSIDE_AUDIT_CHECKPOINT_DIR, key=settings.BEDSIDE_AUDIT_CHECKPOINT_KEY
    )
    return str(path)

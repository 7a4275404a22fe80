"""Celery tasks of the cases app: thin wrappers that run a case by id, and the sweeper.

The task names keep the ``reasoning.`` prefix they had before the case lifecycle moved
here, so messages already queued by an older version are still understood.
"""

from __future__ import annotations

import logging
import uuid

from celery import Task, shared_task
from django.conf import settings

from clinical import lifecycle, selectors

logger = logging.getLogger(__name__)


# max_retries=None: Celery's default (3) would end the task while the case is still
# waiting for the model server; the case row counts and caps the retries instead.
@shared_task(
    bind=True,
    name="reasoning.run_case",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
)
def run_case_task(self: Task, case_id: str) -> str:
    result = lifecycle.case_run(case_id=case_id)
    if result.retry_in is not None:
        # Retries are counted on the case row (they survive redelivery), not by Celery.
        raise self.retry(countdown=result.retry_in)
    return result.status


@shared_task(name="reasoning.resend_stale_cases", ignore_result=True)
def resend_stale_cases_task() -> int:
    return len(cases_resend_stale(older_than_s=settings.BEDSIDE_STALE_QUEUED_S))


def cases_resend_stale(*, older_than_s: int) -> list[uuid.UUID]:
    """Re-send the task of every case that nothing is working on (``selectors.cases_stale``).
    Duplicates are harmless: a case is claimed before it is run."""
    stale = selectors.cases_stale(older_than_s=older_than_s)
    for case_id in stale:
        run_case_task.delay(str(case_id))
    if stale:
        logger.warning("re-sent %d case(s) that nothing was working on", len(stale))
    return stale

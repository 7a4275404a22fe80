"""Celery tasks: thin wrappers that call the reasoning services by case id."""

from __future__ import annotations

from celery import Task, shared_task

from reasoning import services


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
    result = services.case_run(case_id=case_id)
    if result.retry_in is not None:
        # Retries are counted on the case row (they survive redelivery), not by Celery.
        raise self.retry(countdown=result.retry_in)
    return result.status


@shared_task(name="reasoning.resend_stale_cases", ignore_result=True)
def resend_stale_cases_task() -> int:
    from django.conf import settings

    return len(services.cases_resend_stale(older_than_s=settings.BEDSIDE_STALE_QUEUED_S))

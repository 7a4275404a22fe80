"""Celery tasks: thin wrappers that call the reasoning services by case id."""

from __future__ import annotations

from celery import Task, shared_task

from reasoning import services


@shared_task(bind=True, name="reasoning.run_case", acks_late=True, reject_on_worker_lost=True)
def run_case_task(self: Task, case_id: str) -> str:
    result = services.case_run(case_id=case_id)
    if result.retry_in is not None:
        # Retries are counted on the case row (they survive redelivery), not by Celery.
        raise self.retry(countdown=result.retry_in, max_retries=None)
    return result.status

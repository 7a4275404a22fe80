"""Celery tasks of EHR integration: completion callbacks and write-backs to the EHR, one
message per attempt."""

from __future__ import annotations

from celery import shared_task

from clinical.ehr import callbacks, writeback


@shared_task(name="clinical.send_case_callback", ignore_result=True)
def send_case_callback_task(case_id: str, attempt: int) -> bool:
    delivery = callbacks.callback_deliver(case_id=case_id, attempt=attempt)
    if delivery.retry_in is not None:
        # A new message per attempt (not self.retry), so the attempt number travels with it.
        send_case_callback_task.apply_async((case_id, attempt + 1), countdown=delivery.retry_in)
    return delivery.delivered


@shared_task(name="clinical.send_case_writeback", ignore_result=True)
def send_case_writeback_task(case_id: str, attempt: int) -> bool:
    delivery = writeback.writeback_deliver(case_id=case_id, attempt=attempt)
    if delivery.retry_in is not None:
        send_case_writeback_task.apply_async((case_id, attempt + 1), countdown=delivery.retry_in)
    return delivery.delivered

"""The Celery task is a thin, repeatable wrapper; its retries are capped by the case row."""

from __future__ import annotations

import pytest
from celery.exceptions import Retry

from clinical import lifecycle, tasks


def test_task_never_runs_out_of_celery_retries_before_the_case_does() -> None:
    # The case row caps retries (BEDSIDE_MODEL_MAX_RETRIES); Celery's own default cap of 3
    # once left a case `queued` with no task behind it while the model server was down.
    assert tasks.run_case_task.max_retries is None
    assert tasks.run_case_task.acks_late is True
    assert tasks.run_case_task.reject_on_worker_lost is True


def test_task_asks_celery_to_retry_after_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        lifecycle, "case_run", lambda case_id: lifecycle.RunResult("retrying", retry_in=42)
    )
    seen: dict[str, object] = {}

    def fake_retry(**kwargs: object) -> Retry:
        seen.update(kwargs)
        return Retry("again")

    monkeypatch.setattr(tasks.run_case_task, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.run_case_task.run("00000000-0000-0000-0000-000000000000")
    assert seen == {"countdown": 42}


def test_task_returns_the_final_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "case_run", lambda case_id: lifecycle.RunResult("completed"))
    assert tasks.run_case_task.run("00000000-0000-0000-0000-000000000000") == "completed"

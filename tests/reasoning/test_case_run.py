"""Running a case against a fake OpenAI-compatible server: one run per case, retries
while the server is down, visible failures when no sample is usable."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_chain
from clinical import lifecycle
from clinical import tasks as clinical_tasks
from clinical.models import Case, CaseStatus
from reasoning import services
from reasoning.models import ReasoningRun, ServedModel
from tests.factories import load_case, submitted_case
from tests.fakes import FakeModelServer, agreeing_completion, choice, completion


@pytest.fixture
def case(alice: User) -> Case:
    return submitted_case(alice)


def test_case_completes_with_one_run_holding_everything(
    case: Case, fake_model: FakeModelServer
) -> None:
    fake_model.push(
        agreeing_completion(["Acute MI", "acute MI", "Unstable angina"], logprobs=[-0.2, -0.4])
    )
    result = lifecycle.case_run(case_id=case.id)
    assert result.status == CaseStatus.COMPLETED
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED
    run = ReasoningRun.objects.get(case=case)
    assert (
        run.assessment is not None and run.assessment["differential"][0]["diagnosis"] == "Acute MI"
    )
    assert run.trace_source == "answer_steps"
    assert run.reasoning_trace
    assert run.confidence_components["agreement"] == round(2 / 3, 4)
    assert 0 < run.confidence < 1
    assert run.prompt_version == "assessment.v2" and len(run.prompt_sha256) == 64
    assert run.model_revision == services.revision_of(fake_model.model, "/models/fake", 4096)
    served = ServedModel.objects.get(revision=run.model_revision)
    assert (served.model_id, served.root, served.max_model_len) == (
        fake_model.model,
        "/models/fake",
        4096,
    )
    assert run.finish_reasons == ["stop", "stop", "stop"]
    assert run.completion_tokens == 450 and run.prompt_tokens == 300
    assert run.raw_response is not None and len(run.raw_response["choices"]) == 3

    request = fake_model.requests[-1]
    assert request["n"] == 3
    assert request["response_format"]["type"] == "json_schema"
    assert [m["role"] for m in request["messages"]] == ["user"]  # no system prompt
    assert "Troponin I 2.3 ng/mL" in request["messages"][0]["content"]

    codes = list(AuditEvent.objects.filter(case_id=case.id).values_list("code", flat=True))
    assert codes == ["case.submitted", "run.started", "run.completed"]
    assert verify_chain() is None


def test_second_delivery_of_a_finished_case_runs_nothing(
    case: Case, fake_model: FakeModelServer
) -> None:
    lifecycle.case_run(case_id=case.id)
    again = lifecycle.case_run(case_id=case.id)
    assert again.status == CaseStatus.COMPLETED
    assert ReasoningRun.objects.filter(case=case).count() == 1
    assert len(fake_model.requests) == 1


def test_delivery_while_another_worker_holds_the_case_waits(case: Case) -> None:
    claim = lifecycle.case_claim(case_id=case.id)
    assert isinstance(claim, lifecycle.Claim)
    duplicate = lifecycle.case_run(case_id=case.id)
    assert duplicate.status == "busy" and duplicate.retry_in is not None and duplicate.retry_in > 0
    # Within the backoff cap, not the whole lease: the retry is held unacknowledged till then.
    assert settings.BEDSIDE_CASE_TIMEOUT_S > settings.BEDSIDE_RETRY_BACKOFF_MAX_S
    assert duplicate.retry_in <= settings.BEDSIDE_RETRY_BACKOFF_MAX_S


def test_expired_claim_is_taken_over_and_the_old_worker_cannot_record(
    case: Case, fake_model: FakeModelServer
) -> None:
    first = lifecycle.case_claim(case_id=case.id)
    assert isinstance(first, lifecycle.Claim)
    Case.objects.filter(id=case.id).update(claimed_until=timezone.now())  # the first worker died
    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.COMPLETED
    from reasoning import prompts

    late = lifecycle.case_record_outcome(
        claim=first, prompt=prompts.render(case.input), result=None, failure="x"
    )
    assert late.status == "superseded"
    assert ReasoningRun.objects.filter(case=case).count() == 1
    assert Case.objects.get(id=case.id).attempts == 2


def test_a_superseded_worker_cannot_record_while_the_new_one_still_runs(
    case: Case, fake_model: FakeModelServer
) -> None:
    """Two workers racing for one case: only the current claim holder records a run."""
    from reasoning import prompts

    first = lifecycle.case_claim(case_id=case.id)
    assert isinstance(first, lifecycle.Claim)
    Case.objects.filter(id=case.id).update(claimed_until=timezone.now())  # its lease ran out
    second = lifecycle.case_claim(case_id=case.id)
    assert isinstance(second, lifecycle.Claim) and second.token != first.token
    # The first worker comes back with an answer while the second is still at work.
    late = lifecycle.case_record_outcome(
        claim=first, prompt=prompts.render(case.input), result=None, failure="late"
    )
    assert late.status == "superseded"
    assert not ReasoningRun.objects.filter(case=case).exists()
    done = lifecycle.case_record_outcome(
        claim=second, prompt=prompts.render(case.input), result=None, failure="x"
    )
    assert done.status == CaseStatus.FAILED
    assert ReasoningRun.objects.filter(case=case).count() == 1


def test_case_that_keeps_losing_its_worker_ends_failed(case: Case, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BEDSIDE_MAX_ATTEMPTS = 2
    for _ in range(2):
        assert isinstance(lifecycle.case_claim(case_id=case.id), lifecycle.Claim)
        Case.objects.filter(id=case.id).update(claimed_until=timezone.now())
    result = lifecycle.case_run(case_id=case.id)
    assert result.status == CaseStatus.FAILED
    case.refresh_from_db()
    assert "gave up after 2 attempts" in case.status_detail


def test_model_down_puts_the_case_back_with_the_reason_then_it_completes(
    case: Case,
    fake_model: FakeModelServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    for _ in range(3):  # the client's own bounded retries, all failing
        fake_model.push({"error": "overloaded"}, status=503)
    result = lifecycle.case_run(case_id=case.id)
    assert result.status == "retrying" and result.retry_in == settings.BEDSIDE_RETRY_BACKOFF_BASE_S
    case.refresh_from_db()
    assert case.status == CaseStatus.QUEUED
    assert "waiting for the model server" in case.status_detail and "HTTP 503" in case.status_detail
    assert case.retries == 1 and case.next_retry_at is not None
    assert AuditEvent.objects.filter(case_id=case.id, code="run.retry_scheduled").count() == 1

    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.COMPLETED
    assert ReasoningRun.objects.filter(case=case).count() == 1


def test_model_unreachable_until_retries_run_out_fails_with_reason(case: Case, settings) -> None:  # type: ignore[no-untyped-def]
    settings.BEDSIDE_MODEL_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    settings.BEDSIDE_MODEL_MAX_RETRIES = 1
    services.model_client.cache_clear()
    try:
        assert lifecycle.case_run(case_id=case.id).status == "retrying"
        assert lifecycle.case_run(case_id=case.id).status == CaseStatus.FAILED
    finally:
        services.model_client.cache_clear()
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    assert "model server unavailable after 2 tries" in case.status_detail
    assert "unreachable" in case.status_detail


def test_no_usable_sample_fails_the_run_with_each_reason(
    case: Case, fake_model: FakeModelServer
) -> None:
    fake_model.push(
        completion(
            [
                choice(0, '{"differential": ', finish_reason="length"),
                choice(1, "{not json"),
                choice(2, json.dumps({"differential": []})),
            ]
        )
    )
    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.FAILED
    run = ReasoningRun.objects.get(case=case)
    assert run.outcome == "failed"
    assert "sample 0: truncated" in run.failure_reason
    assert "sample 1: invalid JSON" in run.failure_reason
    assert "sample 2: answer does not match the schema" in run.failure_reason
    assert [s["usable"] for s in run.samples] == [False, False, False]
    assert Case.objects.get(id=case.id).status == CaseStatus.FAILED


def test_request_rejected_by_the_server_fails_without_retry(
    case: Case, fake_model: FakeModelServer
) -> None:
    fake_model.push({"error": {"message": "bad schema", "type": "BadRequestError"}}, status=400)
    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.FAILED
    reason = ReasoningRun.objects.get(case=case).failure_reason
    assert "HTTP 400 BadRequestError" in reason
    # The server's own message may quote the prompt: it is never stored or shown.
    assert (
        "bad schema" not in reason
        and "bad schema" not in Case.objects.get(id=case.id).status_detail
    )


def test_a_context_overflow_is_named_without_the_servers_message(
    case: Case, fake_model: FakeModelServer
) -> None:
    message = "This model's maximum context length is 2048 tokens. However, you requested 4000"
    fake_model.push({"error": {"message": message, "type": "BadRequestError"}}, status=400)
    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.FAILED
    reason = ReasoningRun.objects.get(case=case).failure_reason
    assert "do not fit the model's context window" in reason and "2048" not in reason


def test_unknown_case_id_is_dropped(db: None) -> None:
    assert lifecycle.case_run(case_id=uuid.uuid4()).status == "missing"


def test_sweeper_resends_only_cases_left_queued_with_nothing_due(
    alice: User,
    settings,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from datetime import timedelta

    from clinical import tasks

    sent: list[str] = []
    monkeypatch.setattr(tasks.run_case_task, "delay", lambda case_id: sent.append(case_id))
    old, fresh, retry_due_later, running = [submitted_case(alice) for _ in range(4)]
    long_ago = timezone.now() - timedelta(hours=1)
    Case.objects.filter(id__in=[old.id, retry_due_later.id, running.id]).update(updated_at=long_ago)
    Case.objects.filter(id=retry_due_later.id).update(
        next_retry_at=timezone.now() + timedelta(minutes=1)
    )
    Case.objects.filter(id=running.id).update(
        status=CaseStatus.RUNNING, claimed_until=timezone.now() + timedelta(minutes=5)
    )

    resent = clinical_tasks.cases_resend_stale(older_than_s=300)
    assert resent == [old.id]
    assert sent == [str(old.id)]
    assert fresh.id not in resent

    # The worker holding `running` died: once its lease is over, the case is re-sent.
    Case.objects.filter(id=running.id).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert set(clinical_tasks.cases_resend_stale(older_than_s=300)) == {old.id, running.id}


def test_a_configured_seed_goes_with_the_request_and_is_recorded_with_the_run(
    case: Case, fake_model: FakeModelServer, settings: Any
) -> None:
    """BEDSIDE_MODEL_SEED: the same case asks the same way again (the benchmark's raw side
    sends the same body); unset, no seed is sent and each run samples afresh."""
    settings.BEDSIDE_MODEL_SEED = 20
    fake_model.push(agreeing_completion(["Acute MI", "acute MI", "Unstable angina"]))
    assert lifecycle.case_run(case_id=case.id).status == CaseStatus.COMPLETED
    assert fake_model.requests[-1]["seed"] == 20
    assert ReasoningRun.objects.get(case=case).parameters["seed"] == 20
    assert services.case_request(case_input=load_case()).body("m")["seed"] == 20

    settings.BEDSIDE_MODEL_SEED = None
    assert "seed" not in services.case_request(case_input=load_case()).body("m")

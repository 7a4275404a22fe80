"""The broker restarts while cases stream in: every accepted case completes, exactly once.

Real processes all round, for each broker Bedside supports: a broker of this test's own
(Redis append-only, as `make run` starts it, or a private RabbitMQ node beside the
machine's), gunicorn serving the API, a Celery worker, the test's PostgreSQL database, and
a fake model server over real HTTP. While the broker is down, intake still answers 202
(the case is saved; its task cannot be sent) and the sweeper re-sends such cases once the
broker is back. The worker is supervised as systemd (Restart=always) and `make run`
supervise it: kombu's Redis transport can end the worker process on a broker connection
loss (an AttributeError while it requeues unacknowledged messages), and the supervisor
starts it again; the test counts those restarts. The numbers go to
``tests/artifacts/faults-broker-restart-<broker>.json``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical.models import CaseStatus
from reasoning.models import ReasoningRun
from tests.e2e.conftest import ARTIFACTS
from tests.factories import TEST_ACTOR, load_case
from tests.faults.support import Stack, private_broker, running_stack, wait_until_final

CASES = 24


@pytest.fixture(params=["redis", "rabbitmq"])
def stack(
    request: pytest.FixtureRequest, transactional_db: None, tmp_path: Path
) -> Iterator[Stack]:
    broker = private_broker(request.param, tmp_path)
    # Cases take a moment, so some are in flight when the broker goes.
    with running_stack(f"broker-{broker.kind}", broker, model_delay_s=0.3) as running:
        yield running


def test_every_case_accepted_during_a_broker_restart_completes_exactly_once(
    stack: Stack, alice: User
) -> None:
    began = time.monotonic()
    key = accounts_services.api_key_issue(
        name="faults-ehr", role=roles.INTEGRATION, actor=TEST_ACTOR
    ).key
    accepted: list[str] = []
    answers: list[int] = []

    def stream() -> None:
        with httpx.Client(
            base_url=stack.web, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as client:
            for i in range(CASES):
                case = load_case()
                case["external_id"] = f"FAULT-BROKER-{i}"
                response = client.post("/api/v1/cases/", json=case)
                answers.append(response.status_code)
                if response.status_code == 202:
                    accepted.append(response.json()["id"])
                time.sleep(0.25)

    # Warm the web workers first (imports, connections): a first request that takes seconds
    # would otherwise sit through most of the outage, and no case would arrive during it.
    with httpx.Client(
        base_url=stack.web, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        for _ in range(4):
            assert client.get("/api/v1/cases/").status_code == 200
    submitter = threading.Thread(target=stream)
    submitter.start()
    time.sleep(1.5)
    down_at = time.monotonic()
    stack.broker.go_down()  # mid-stream
    time.sleep(2.0)
    stack.broker.start()
    broker_down_s = round(time.monotonic() - down_at, 1)
    submitter.join(timeout=120)
    assert not submitter.is_alive()
    assert answers == [202] * CASES  # nothing refused while the broker was down

    statuses = wait_until_final(accepted, stack.env)
    completed = sum(1 for s in statuses.values() if s == CaseStatus.COMPLETED)
    run_cases = list(
        ReasoningRun.objects.filter(case_id__in=accepted).values_list("case_id", flat=True)
    )
    runs = len(run_cases)
    finished = AuditEvent.objects.filter(case_id__in=accepted, code="run.completed")
    logs = "".join(stack.logs().values())
    numbers = {
        "broker": stack.broker.kind,
        "accepted": len(accepted),
        "completed": completed,
        "runs": runs,
        "duplicate_runs": runs - len(set(run_cases)),
        "completion_events": finished.count(),
        "worker_restarts": stack.supervisor.restarts,
        "broker_down_s": broker_down_s,
        # From the processes' logs: tasks intake could not send (the sweeper re-sent them),
        # task deliveries to the worker (redeliveries and re-sends included), lost acks.
        "not_enqueued_at_intake": logs.count("saved but not enqueued"),
        "deliveries": len(re.findall(r"Task reasoning\.run_case\[\S+\] received", logs)),
        "acks_lost": logs.count("Couldn't ack"),
        "model_requests": len(stack.model.requests),
        "seconds": round(time.monotonic() - began, 1),
    }
    (ARTIFACTS / f"faults-broker-restart-{stack.broker.kind}.json").write_text(
        json.dumps(numbers, indent=2) + "\n"
    )
    print(f"broker restart: {numbers}")
    assert len(accepted) == CASES
    assert numbers["not_enqueued_at_intake"] > 0  # cases really came in while it was down
    # After a reconnect Celery may lower the worker's prefetch and restore it as tasks end;
    # with RabbitMQ the worker then took nothing more for minutes (celery#9512: 13, 7 and 3
    # of 24 cases within the wait here). Bedside turns that off; the worker must not do it.
    assert "Temporarily reducing the prefetch count" not in logs
    assert completed == CASES, statuses
    assert runs == CASES  # exactly one run per case: no duplicate survived
    # one completion event per case
    assert sorted(str(c) for c in finished.values_list("case_id", flat=True)) == sorted(accepted)
    assert verify_chain() is None

"""Scale-out, simulated (issue 20): a worker host removed in the middle of a batch loses no
case. ``bench/scale_out.py --check`` puts the services, the model, the web host (gunicorn and
beat) and two worker hosts in network namespaces of their own, linked by veth pairs, and
SIGKILLs every process of one worker host, then deletes its veth, while cases are in its
hands. Needs root, as CI runs (namespaces); ``make bench-scale-out`` is the full benchmark.

The single-machine form of the guarantee (one worker process SIGKILLed, another takes its
cases over) is ``tests/deploy/test_workers.py``; this one adds separate hosts on a network,
a real RabbitMQ noticing the lost connections, beat's sweeper, and the lease running out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bedside import paths


@pytest.mark.slow
def test_removing_a_worker_host_mid_batch_loses_no_case_and_finishes_none_twice(
    tmp_path: Path,
) -> None:
    assert os.geteuid() == 0, "this test makes network namespaces: run it as root, as CI does"
    out = tmp_path / "scale-out.json"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    run = subprocess.run(
        [sys.executable, "bench/scale_out.py", "--check", "--out", str(out)],
        cwd=paths.PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=400,
        check=False,
    )  # fmt: skip
    assert out.exists(), run.stdout + run.stderr[-4000:]
    result = json.loads(out.read_text())
    removal = result["runs"][-1]
    check = removal["loss_check"]

    # The host went while it held cases: they were taken over by the other host.
    assert removal["removal"]["host"] == "worker2"
    assert removal["removal"]["processes_killed"] >= 1
    assert removal["removal"]["running_at_removal"] >= 1
    assert check["claimed_again_after_a_lost_worker"] >= 1, check

    # Every accepted case final exactly once, nothing left on the broker, the chain intact.
    assert check["refused"] == 0
    assert check["submitted"] == removal["cases"] > 0
    assert check["completed"] + check["failed"] == check["submitted"], check
    assert check["missing"] == 0 and check["not_final"] == [], check
    assert check["with_two_runs"] == [], check
    assert check["completed_without_one_completed_run"] == [], check
    assert check["without_exactly_one_final_event"] == [], check
    assert not any(removal["queue_messages_left"].values()), removal["queue_messages_left"]
    assert result["audit"]["ok"], result["audit"]
    assert result["loss_check_ok"] and run.returncode == 0, run.stderr[-4000:]

"""A held-out emergency case through the real stack (REST → PostgreSQL → broker → worker →
vLLM on CPU → PostgreSQL → audit): what the clinician and the EHR are shown is the checked
answer, whatever the small model writes.

The case is the one an outside trial found shown as an answer with junk in it (a
71-year-old woman breathless after a long flight; differential "mildred-9-19-20-11-20" five
times, red flag "high"). Either outcome is honest: a completed case whose every finding
cites the case's own facts, with no duplicate and no junk, or a failed case that says why.
The early-warning scores are on the case from the moment it is accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.models import AuditEvent
from audit.services import verify_chain
from reasoning.facts import case_facts
from reasoning.gate import junk_reason
from tests.e2e.test_spine import CASE_TIMEOUT_S, POLL_TIMEOUT, issue_key, wait_for_status

pytestmark = pytest.mark.e2e
GATE_KIND = {"diagnosis": "diagnosis", "next step": "step", "red flag": "red flag"}
HELD_OUT = Path(__file__).resolve().parents[1] / "data" / "case_pe_held_out.json"


def _findings(assessment: dict[str, Any]) -> list[tuple[str, str, list[dict[str, str]]]]:
    return [
        *(("diagnosis", d["diagnosis"], d["supporting_facts"]) for d in assessment["differential"]),
        *(("next step", s["action"], s["based_on"]) for s in assessment["next_steps"]),
        *(("red flag", f["flag"], f["based_on"]) for f in assessment["red_flags"]),
    ]


def test_a_held_out_case_shows_only_checked_findings_or_fails_with_the_reasons(
    live_server: Any, real_model_server: str, start_worker: Any
) -> None:
    case_input = json.loads(HELD_OUT.read_text())
    facts = {(f.id, f.text, f.path) for f in case_facts(case_input)}
    worker = start_worker()
    key = issue_key("e2e-held-out")
    with httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=POLL_TIMEOUT
    ) as client:
        response = client.post("/api/v1/cases/", json=case_input)
        assert response.status_code == 202, response.text
        submitted = response.json()
        # The safety net beside the model, from intake on: HR 118, RR 26, SpO2 89 % score
        # NEWS2 2 + 3 + 3 = 8 (and temperature 37.4 and systolic 112 score 0): high.
        news2 = next(s for s in submitted["early_warning"] if s["name"] == "NEWS2")
        assert news2["score"] == 8 and news2["risk"] == "high"
        assert submitted["early_warning_alert"] is True
        done = wait_for_status(
            client, submitted["links"]["self"], {"completed", "failed"}, CASE_TIMEOUT_S
        )

    runs_audited = AuditEvent.objects.filter(case_id=done["id"], code__startswith="run.")
    assert runs_audited.filter(code__in=["run.completed", "run.failed"]).count() == 1
    assert verify_chain() is None
    if done["status"] == "failed":
        # Nothing junk reached anyone; the reasons say what each sample did wrong.
        assert done["failure_reason"].startswith("no usable sample ("), done["failure_reason"]
        assert "result" not in done or done["result"] is None
        print(f"\n[e2e] held-out case failed, as it may: {done['failure_reason'][:300]}")
        return

    result = done["result"]
    assessment = result["assessment"]
    assert assessment["differential"], worker.log()[-2000:]
    for kind, text, cited in _findings(assessment):
        assert cited, f"{kind} {text!r} is shown without a cited fact"
        for fact in cited:
            assert (fact["id"], fact["text"], fact["path"]) in facts, (kind, text, fact)
        assert not junk_reason(text, kind=GATE_KIND[kind]), (kind, text)
    names = [d["diagnosis"].casefold().strip() for d in assessment["differential"]]
    codes = [d["coding"]["code"] for d in assessment["differential"] if d.get("coding")]
    assert len(names) == len(set(names)) and len(codes) == len(set(codes)), assessment
    assert 1 <= result["samples_usable"] <= result["samples_total"] == 3
    usable = sum(1 for s in result["samples"] if s["usable"])
    assert usable == result["samples_usable"]
    assert len(result["unusable_reasons"]) == result["samples_total"] - usable
    print(
        f"\n[e2e] held-out case completed: {names[:3]}, codes {codes[:3]}, "
        f"{usable} of 3 samples usable"
    )

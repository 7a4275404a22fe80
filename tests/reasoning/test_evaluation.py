"""`manage.py evaluate` and `calibrate` against a fake server with controlled samples: the
report's numbers are checked against values worked out by hand."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from clinical import lifecycle
from clinical.schemas import CaseInput
from clinical.services import case_submit
from reasoning import selectors, services
from reasoning.evaluation import DatasetError, load_dataset
from reasoning.models import Calibration, ReasoningRun, ServedModel, ValidationReport
from tests.conftest import client_for
from tests.factories import TEST_ACTOR, load_case, submitted_case
from tests.fakes import FakeModelServer, choice, completion, mcq_completion

GOLD = ["A", "B", "C", "D"]


def write_dataset(path: Path, gold: list[str] = GOLD) -> Path:
    lines = [
        json.dumps(
            {
                "question": f"Vignette {i}: which option?",
                "options": {"A": "first", "B": "second", "C": "third", "D": "fourth"},
                "answer": "x",
                "answer_idx": letter,
                "meta_info": "step1",
            }
        )
        for i, letter in enumerate(gold)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def script_four_items(fake: FakeModelServer) -> None:
    # Without log-probabilities: confidence = 0.8 * agreement + 0.2 * stated.
    fake.push(mcq_completion(["A", "A", "A"], stated=0.9))  # right, 0.8 + 0.18 = 0.98
    fake.push(mcq_completion(["C", "C", "B"], stated=0.5))  # wrong, 0.5333 + 0.1 = 0.6333
    fake.push(mcq_completion(["C", "A", "B"], stated=0.4))  # right by plurality, 0.3467
    fake.push(completion([choice(i, "not json") for i in range(3)]))  # unanswered: wrong, 0


@pytest.fixture
def evaluated(db: None, tmp_path: Path, fake_model: FakeModelServer) -> ValidationReport:
    script_four_items(fake_model)
    dataset = write_dataset(tmp_path / "four.jsonl")
    call_command(
        "evaluate", dataset=str(dataset), out=str(tmp_path / "out"), concurrency=1,
        stdout=StringIO(), stderr=StringIO(),
    )  # fmt: skip
    return ValidationReport.objects.get()


def test_report_metrics_match_the_hand_computed_values(evaluated: ValidationReport) -> None:
    items = evaluated.items
    assert [i["predicted"] for i in items] == ["A", "C", "C", None]
    assert [i["confidence"] for i in items] == [0.98, 0.6333, 0.3467, 0.0]
    m = evaluated.metrics
    assert m["accuracy"] == 0.5
    # Brier: ((1-0.98)^2 + 0.6333^2 + (1-0.3467)^2 + 0^2) / 4
    assert m["brier"] == pytest.approx(0.2071, abs=1e-4)
    # ECE, 10 bins, one item each: (0.02 + 0.6333 + 0.6533 + 0) / 4
    assert m["ece"] == pytest.approx(0.3267, abs=1e-4)
    # AUROC: right {0.98, 0.3467} vs wrong {0.6333, 0}: 3 of 4 pairs ordered right
    assert m["auroc"] == 0.75
    assert (evaluated.items_total, evaluated.items_answered) == (4, 3)
    assert m["failures"] == {"no usable sample (sample 0": 1}
    # The answer gate's measures: 9 of 12 samples usable; multiple-choice answers cite no
    # facts and name no diagnosis, so those shares do not apply (and say so).
    assert m["usable_sample_share"] == 0.75
    assert m["verified_fact_share"] is None and m["coded_diagnosis_share"] is None
    assert "do not apply to multiple-choice" in m["gate_note"]


def test_report_names_model_prompt_and_data_and_writes_files(
    evaluated: ValidationReport, tmp_path: Path
) -> None:
    assert evaluated.model_revision == services.revision_of(
        evaluated.model_name, "/models/fake", 4096
    )
    assert evaluated.prompt_version == "mcq.v1"
    assert len(evaluated.dataset_sha256) == 64
    out = tmp_path / "out"
    document = json.loads((out / "report.json").read_text())
    assert document["dataset"]["sha256"] == evaluated.dataset_sha256
    assert document["metrics"]["accuracy"] == 0.5
    assert len(document["reliability_bins"]) == 4
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "| accuracy | 0.500 |" in (out / "report.md").read_text()
    assert "| usable samples (answer gate) | 75.0% |" in (out / "report.md").read_text()
    assert "| cited facts verified | not applicable |" in (out / "report.md").read_text()
    assert AuditEvent.objects.filter(code="validation.completed").count() == 1


def test_each_request_asks_for_n_samples_with_the_answer_held_to_the_options(
    evaluated: ValidationReport, fake_model: FakeModelServer
) -> None:
    request = fake_model.requests[0]
    assert request["n"] == 3
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["answer"]["enum"] == ["A", "B", "C", "D"]
    assert "A. first" in request["messages"][0]["content"]


def test_a_bad_line_is_named_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"question": "q", "options": {"A": "x", "B": "y"}, "answer_idx": "A"}\n{"question": "q"}\n'
    )
    with pytest.raises(DatasetError, match="line 2: options"):
        load_dataset(path)


def test_shipped_sample_loads() -> None:  # no database needed
    from reasoning.management.commands.evaluate import SHIPPED_SAMPLE

    dataset = load_dataset(SHIPPED_SAMPLE)
    assert len(dataset.items) == 12
    assert {item.answer_idx for item in dataset.items} <= {"A", "B", "C", "D"}


def test_calibration_applies_to_new_runs_of_the_same_revision_only(
    evaluated: ValidationReport, fake_model: FakeModelServer, alice: User, settings: Any
) -> None:
    settings.BEDSIDE_CALIBRATION_MIN_ITEMS = 4  # the hand-worked report has four items
    call_command("calibrate", stdout=StringIO())
    calibration = Calibration.objects.get()
    assert calibration.model_revision == evaluated.model_revision
    # Isotonic on (0, F) (0.3467, T) (0.6333, F) (0.98, T): pooled to 0, 0.5, 1.
    assert calibration.parameters["points"] == [[0.0, 0.0], [0.49, 0.5], [0.98, 1.0]]

    case = submitted_case(alice)
    lifecycle.case_run(case_id=case.id)
    run = ReasoningRun.objects.get(case=case)
    assert run.calibration == calibration
    assert run.confidence_raw is not None
    assert run.confidence == services.calibration_maps.apply(
        calibration.method, calibration.parameters, run.confidence_raw
    )
    body = client_for(alice).get(f"/api/v1/cases/{case.id}/").json()
    assert body["result"]["confidence"]["raw"] == run.confidence_raw
    assert body["result"]["confidence"]["calibration"]["report_id"] == evaluated.pk
    assert body["result"]["confidence"]["validation_note"].startswith("On 4 validation cases")
    assert run.validation_report == evaluated
    assert run.calibration_summary == {
        "id": calibration.pk,
        "method": "isotonic.v1",
        "report_id": evaluated.pk,
        "items": 4,
        "fitted_at": calibration.created_at.isoformat(),
    }
    # A calibration fitted after the run finished is not the one it was shown with.
    call_command("calibrate", method="platt.v1", stdout=StringIO())
    again = client_for(alice).get(f"/api/v1/cases/{case.id}/").json()
    assert again["result"]["confidence"] == body["result"]["confidence"]

    # New weights behind the same name: a new revision, and the old calibration is not used.
    fake_model.root = "/models/fake-v2"
    services._served_model_revision.cache_clear()
    second = submitted_case(alice)
    lifecycle.case_run(case_id=second.id)
    run2 = ReasoningRun.objects.get(case=second)
    assert run2.model_revision != run.model_revision
    assert run2.calibration is None
    assert run2.confidence == run2.confidence_raw
    assert ServedModel.objects.count() == 2
    with pytest.raises(CommandError, match="never carries across model revisions"):
        call_command("calibrate", report=evaluated.pk, stdout=StringIO())


def test_calibration_is_refused_on_fewer_items_than_the_minimum(
    evaluated: ValidationReport, settings: Any
) -> None:
    settings.BEDSIDE_CALIBRATION_MIN_ITEMS = 30
    with pytest.raises(CommandError, match="4 validation items; a calibration needs at least 30"):
        call_command("calibrate", stdout=StringIO())
    assert not Calibration.objects.exists()
    assert not AuditEvent.objects.filter(code="calibration.fitted").exists()


def test_calibration_below_a_raised_minimum_is_not_applied(
    evaluated: ValidationReport, fake_model: FakeModelServer, alice: User, settings: Any
) -> None:
    settings.BEDSIDE_CALIBRATION_MIN_ITEMS = 4
    call_command("calibrate", stdout=StringIO())
    assert selectors.calibration_for(evaluated.model_revision) == Calibration.objects.get()
    settings.BEDSIDE_CALIBRATION_MIN_ITEMS = 5
    assert selectors.calibration_for(evaluated.model_revision) is None
    case = case_submit(
        case_input=CaseInput.model_validate(load_case()), actor=TEST_ACTOR, submitted_by=alice
    )
    lifecycle.case_run(case_id=case.id)
    run = ReasoningRun.objects.get(case=case)
    assert run.calibration is None
    assert run.confidence == run.confidence_raw


def test_model_page_and_api_show_the_latest_report(
    evaluated: ValidationReport, alice: User, ehr_client
) -> None:  # type: ignore[no-untyped-def]
    page = client_for(alice).get("/model/")
    assert page.status_code == 200
    assert f"Validation report {evaluated.pk}" in page.content.decode()
    png = client_for(alice).get(f"/model/reports/{evaluated.pk}/reliability.png")
    assert png["Content-Type"] == "image/png"
    body = ehr_client.get("/api/v1/model/validation/").json()
    assert body["results"][0]["latest_report"]["metrics"]["accuracy"] == 0.5

"""`manage.py evaluate` and `calibrate` against the real local model (vLLM CPU): the small
model's accuracy is low, and the report must still be exactly right about what happened."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from reasoning import calibration, metrics, services
from reasoning import selectors as reasoning_selectors
from reasoning.models import Calibration, ServedModel, ValidationReport

pytestmark = pytest.mark.e2e
ITEMS = 3


def test_evaluate_and_calibrate_on_the_real_model(
    real_model_server: str, db: None, tmp_path: Path, settings: Any
) -> None:
    settings.BEDSIDE_CALIBRATION_MIN_ITEMS = ITEMS  # a few items keep the CPU run short
    services.model_client.cache_clear()
    services._served_model_revision.cache_clear()
    out = tmp_path / "report"
    stderr = StringIO()
    call_command("evaluate", limit=ITEMS, out=str(out), stdout=StringIO(), stderr=stderr)
    assert f"{ITEMS}/{ITEMS} items (100%)" in stderr.getvalue()  # progress was shown

    report = ValidationReport.objects.get()
    served = ServedModel.objects.get(revision=report.model_revision)
    assert served.max_model_len == 4096
    assert len(report.items) == ITEMS
    # The report's numbers are recomputed from its own items: nothing made up.
    confidence = [item["confidence"] for item in report.items]
    correct = [item["correct"] for item in report.items]
    assert all(0.0 <= c <= 1.0 for c in confidence)
    assert all(item["correct"] == (item["predicted"] == item["gold"]) for item in report.items)
    m = report.metrics
    assert m["accuracy"] == round(metrics.accuracy(correct), 4)
    assert m["brier"] == round(metrics.brier_score(confidence, correct), 4)
    assert m["ece"] == round(metrics.expected_calibration_error(confidence, correct), 4)
    auroc = metrics.auroc(confidence, correct)
    assert m["auroc"] == (None if auroc is None else round(auroc, 4))
    assert report.completion_tokens_total > 0
    assert (out / "reliability.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "report.json").read_text())["model"]["revision"] == served.revision
    print(  # the closing note quotes these
        f"real-model evaluation: {ITEMS} items, accuracy {m['accuracy']}, brier {m['brier']}, "
        f"ece {m['ece']}, auroc {m['auroc']}, {m['seconds_per_item']} s and "
        f"{m['completion_tokens_per_item']} completion tokens per item"
    )

    call_command("calibrate", method=calibration.PLATT, stdout=StringIO())
    fitted = Calibration.objects.get()
    assert fitted.model_revision == report.model_revision
    assert reasoning_selectors.calibration_for(report.model_revision) == fitted

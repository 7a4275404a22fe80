"""The held-out-style cases that ``bench/answers.py`` measures are valid cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinical.schemas import CaseInput

HELDOUT = Path(__file__).resolve().parent.parent / "data" / "heldout"
CASES = sorted(HELDOUT.glob("[0-9][0-9]_*.json"))


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_validates_as_case_input(path: Path) -> None:
    case = CaseInput.model_validate(json.loads(path.read_text()))
    assert case.question


def test_every_case_has_an_expected_diagnosis_and_nothing_else_is_listed() -> None:
    expected = json.loads((HELDOUT / "expected.json").read_text())
    assert sorted(expected) == [p.name for p in CASES]
    assert all(entry["expected_diagnosis"].strip() for entry in expected.values())


def test_the_set_covers_partial_and_missing_vitals() -> None:
    vitals = [json.loads(p.read_text()).get("vitals") for p in CASES]
    assert any(v is None for v in vitals)
    assert any(v is not None and len(v) < 4 for v in vitals)

"""The checks ``bench/answers.py`` counts with: what is a verified fact, junk, a duplicate,
for today's answers and for checked ones."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from reasoning.schemas import Assessment

ROOT = Path(__file__).resolve().parent.parent


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_answers", ROOT / "bench" / "answers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


answers = _load()
CASE = json.loads((ROOT / "tests" / "data" / "heldout" / "01_pulmonary_embolism.json").read_text())


@pytest.mark.parametrize(
    "fact",
    ["HR 118/min", "118", "SpO2 89%", "spo2: 89", "heart rate 118", "Her right calf is swollen",
     "D-dimer 4.2 mg/L FEU", "14-hour flight", "HYPERTENSION"],
)  # fmt: skip
def test_facts_of_the_case_are_verified(fact: str) -> None:
    assert answers.CaseText.of(CASE).verifies(fact)


@pytest.mark.parametrize(
    "fact", [",", "},{", "high", "tachycardia", "swollen calf", "HR 120", "a", "What is the"]
)
def test_facts_not_in_the_case_are_not(fact: str) -> None:
    assert not answers.CaseText.of(CASE).verifies(fact)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("mildred-9-19-20-11-20", "identifier"), ("High", "likelihood word"), ("True", "boolean"),
     ("...", "punctuation"), ("},{", "punctuation"), ("118", "number"),
     ("Pulmonary embolism", ""), ("COVID-19", ""), ("non-ST-elevation MI", "")],
)  # fmt: skip
def test_junk(text: str, reason: str) -> None:
    assert answers.junk_reason(text) == reason


def test_todays_answer_and_a_checked_one_read_alike() -> None:
    today = Assessment.model_validate(
        {
            "reasoning_steps": ["x"],
            "differential": [
                {"diagnosis": "PE", "likelihood": "high", "supporting_facts": ["HR 118/min"]}
            ],
            "next_steps": [{"action": "CTPA", "based_on": []}],
            "red_flags": [{"flag": "High", "based_on": [","]}],
            "stated_confidence": 0.5,
        }
    )
    checked = {
        "differential": [
            {
                "diagnosis": {"text": "PE", "code": "I26.99"},
                "supporting_facts": [{"id": "f3", "text": "HR 118/min", "path": "vitals"}],
            }
        ],
        "next_steps": [{"action": "CTPA", "based_on": []}],
        "red_flags": [{"flag": "High", "based_on": [{"id": "f0", "text": ","}]}],
    }
    a, b = answers.answer_items(today), answers.answer_items(checked)
    assert [(i.section, i.text, i.facts) for i in a] == [(i.section, i.text, i.facts) for i in b]
    assert [i.code for i in b] == ["I26.99", "", ""]


def test_counts_duplicates_unsupported_and_junk() -> None:
    answer = {
        "differential": [
            {"diagnosis": "Pulmonary embolism", "supporting_facts": ["HR 118/min", "made up"]},
            {"diagnosis": "pulmonary  embolism.", "supporting_facts": []},
            {"diagnosis": "Pneumonia", "supporting_facts": ["crackles"]},
        ],
        "next_steps": [],
        "red_flags": [{"flag": "True", "based_on": []}],
    }
    counts = answers.count([answer], answers.CaseText.of(CASE), lambda text: "")
    assert (counts.diagnoses, counts.duplicate_diagnoses, counts.unsupported_diagnoses) == (3, 1, 2)
    assert (counts.cited_facts, counts.verified_facts) == (3, 1)
    assert (counts.junk_items, counts.junk_red_flags) == (1, 1)
    coded = answers.count([answer], answers.CaseText.of(CASE), lambda text: "I26.99")
    assert (coded.coded, coded.duplicate_diagnoses) == (3, 2)  # the same code twice more


def test_cited_fact_ids_read_as_the_case_facts_they_stand_for() -> None:
    from reasoning.facts import case_facts

    case = answers.CaseText.of(CASE)
    facts = case_facts(CASE)
    raw = {
        "differential": [
            {"diagnosis": "Pulmonary embolism", "supporting_facts": [facts[0].id, "F999"]}
        ],
        "next_steps": [],
        "red_flags": [],
    }
    counted = answers.count([raw], case, None)
    assert (counted.cited_facts, counted.verified_facts) == (2, 1)
    checked = {
        "differential": [
            {"diagnosis": "Pulmonary embolism", "supporting_facts": [f.as_dict() for f in facts]}
        ],
        "next_steps": [],
        "red_flags": [],
    }
    counted = answers.count([checked], case, None)
    assert counted.verified_facts == counted.cited_facts == len(facts)

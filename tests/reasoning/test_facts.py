"""The case's facts: each vital with its unit, each lab with its range, history items,
medications, allergies and phrases of the complaint and HPI, with ids and field paths; the
prompt lists them and the per-case schema lets the model cite only their ids."""

from __future__ import annotations

import json

from clinical.schemas import CaseInput
from reasoning import prompts
from reasoning.facts import FactIndex, case_facts, phrases
from reasoning.schemas import response_format
from tests.factories import load_case

CASE = load_case()


def test_facts_of_the_bundled_case_carry_values_units_and_paths() -> None:
    facts = {f.text: (f.id, f.path) for f in case_facts(CASE)}
    assert facts["64-year-old male"] == ("F1", "patient")
    assert facts["Crushing chest pain for 40 minutes"][1] == "chief_complaint"
    assert facts["Pain radiates to the left arm"][1] == "history_of_present_illness"
    assert facts["with sweating and nausea"][1] == "history_of_present_illness"
    assert facts["type 2 diabetes"][1] == "past_medical_history[1]"
    assert facts["metformin 500 mg oral twice daily"][1] == "medications[0]"
    assert facts["Allergy: penicillin (rash, mild)"][1] == "allergies[0]"
    assert facts["SpO2 94 %"][1] == "vitals.spo2"
    assert facts["Heart rate 110 /min"][1] == "vitals.heart_rate"
    assert facts["Troponin I 2.3 ng/mL (ref <0.04)"][1] == "labs[0]"
    ids = [f.id for f in case_facts(CASE)]
    assert ids == [f"F{n}" for n in range(1, len(ids) + 1)]
    assert not any("diagnosis" in f.text for f in case_facts(CASE))  # the question is no fact


def test_phrases_split_at_sentences_and_commas_and_drop_punctuation() -> None:
    assert phrases("Pain radiates to the left arm, with sweating.  Nausea; vomiting!") == [
        "Pain radiates to the left arm",
        "with sweating",
        "Nausea",
        "vomiting",
    ]
    assert phrases(" , . ;") == [", . ;"]  # no words at all: kept whole, never lost
    assert phrases("  ") == []


def test_minimal_case_has_age_sex_and_complaint_and_a_repeated_text_is_listed_once() -> None:
    case = CaseInput.model_validate(
        {
            "patient": {"age_years": 30, "sex": "female", "pregnant": True},
            "chief_complaint": "Headache, headache",
            "question": "Why?",
        }
    ).model_dump(mode="json")
    assert [(f.text, f.path) for f in case_facts(case)] == [
        ("30-year-old female", "patient"),
        ("pregnant", "patient.pregnant"),
        ("Headache", "chief_complaint"),
    ]


def test_a_citation_resolves_by_id_or_exact_text_only() -> None:
    index = FactIndex(case_facts(CASE))
    assert index.resolve("F14").text == "SpO2 94 %"  # type: ignore[union-attr]
    assert index.resolve("[f14]").text == "SpO2 94 %"  # type: ignore[union-attr]
    assert index.resolve("spo2 94 %").id == "F14"  # type: ignore[union-attr]
    for invented in ("F99", "SpO2 80 %", "chest pain", ",", "},{", ""):
        assert index.resolve(invented) is None


def test_prompt_lists_every_fact_with_its_id_under_its_heading() -> None:
    text = prompts.render(CASE).text
    for fact in case_facts(CASE):
        assert f"[{fact.id}] {fact.text}" in text
    assert "Vitals:\n[F9] Heart rate 110 /min" in text
    assert "QUESTION\nWhat is the most likely diagnosis" in text
    assert prompts.render(CASE, "assessment.v1").version == "assessment.v1"  # old runs' hash


def test_per_case_schema_enum_is_exactly_the_case_fact_ids() -> None:
    for case in (CASE, load_case("case_pe_held_out.json")):
        ids = [f.id for f in case_facts(case)]
        schema = response_format(ids)["json_schema"]["schema"]
        assert schema["$defs"]["FactId"]["enum"] == ids
        for name, key in (
            ("Diagnosis", "supporting_facts"),
            ("NextStep", "based_on"),
            ("RedFlag", "based_on"),
        ):
            cited = schema["$defs"][name]["properties"][key]
            assert cited["items"] == {"$ref": "#/$defs/FactId"}
            assert cited["minItems"] == 1
        # Small enough for the model server's grammar compiler (measured in the note).
        assert len(json.dumps(schema)) < 4000


def test_the_sent_schema_keeps_findings_to_words() -> None:
    import re

    from reasoning.schemas import FINDING_PATTERN, assessment_json_schema

    schema = assessment_json_schema(["F1", "F2"])
    for name, key in (("Diagnosis", "diagnosis"), ("NextStep", "action"), ("RedFlag", "flag")):
        assert schema["$defs"][name]["properties"][key]["pattern"] == FINDING_PATTERN
    for junk in ("1.0},{", ", ", "F17}", "2.5", "},{"):
        assert not re.match(FINDING_PATTERN, junk), junk
    for finding in ("Pulmonary embolism", "Type 2 diabetes", "CT pulmonary angiogram (CTPA)"):
        assert re.match(FINDING_PATTERN, finding), finding

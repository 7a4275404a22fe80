"""Versioned prompt templates (files under ``reasoning/prompts/``) and how a case is
rendered into one. A run stores the template's version and the SHA-256 of the text
actually sent, so an auditor can tell exactly what the model was given.

Following the DeepSeek-R1 authors' guidance for their distills: no system prompt, all
instructions in the user turn.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from reasoning.facts import Fact, case_facts, lab_result

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
CURRENT_VERSION = "assessment.v2"  # v2: the case as facts with ids the answer cites
# assessment.v1 (the case as prose, citations written out) stays for the hash of old runs.
MCQ_VERSION = "mcq.v1"  # validation vignettes (``manage.py evaluate``)


@dataclass(frozen=True)
class RenderedPrompt:
    version: str
    text: str
    sha256: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.text}]


def load_template(version: str = CURRENT_VERSION) -> Template:
    return Template((PROMPTS_DIR / f"{version}.txt").read_text())


def _vitals_line(vitals: dict[str, Any]) -> str:
    labels = [
        ("heart_rate", "HR", "/min"),
        ("systolic_bp", "SBP", " mmHg"),
        ("diastolic_bp", "DBP", " mmHg"),
        ("respiratory_rate", "RR", "/min"),
        ("temperature_c", "Temp", " °C"),
        ("spo2", "SpO2", "%"),
        ("weight_kg", "Weight", " kg"),
    ]
    return ", ".join(
        f"{label} {vitals[key]}{unit}" for key, label, unit in labels if vitals.get(key) is not None
    )


def case_summary(case_input: dict[str, Any]) -> str:
    """The case as plain lines a clinician would write; every fact labelled, units kept."""
    patient = case_input["patient"]
    pregnancy = ""
    if patient.get("pregnant") is True:
        pregnancy = ", pregnant"
    elif patient.get("pregnant") is False and patient["sex"] == "female":
        pregnancy = ", not pregnant"
    lines = [f"Patient: {patient['age_years']}-year-old {patient['sex']}{pregnancy}"]
    if case_input.get("setting"):
        lines.append(f"Setting: {case_input['setting']}")
    lines.append(f"Chief complaint: {case_input['chief_complaint']}")
    if case_input.get("history_of_present_illness"):
        lines.append(f"History of present illness: {case_input['history_of_present_illness']}")
    if case_input.get("past_medical_history"):
        lines.append("Past medical history: " + "; ".join(case_input["past_medical_history"]))
    if case_input.get("medications"):
        meds = [
            " ".join(part for part in (m["name"], m["dose"], m["route"], m["frequency"]) if part)
            for m in case_input["medications"]
        ]
        lines.append("Medications: " + "; ".join(meds))
    if case_input.get("allergies"):
        allergies = [
            a["substance"]
            + (f" ({a['reaction']}, {a['severity']})" if a["reaction"] else f" ({a['severity']})")
            for a in case_input["allergies"]
        ]
        lines.append("Allergies: " + "; ".join(allergies))
    if case_input.get("vitals"):
        vitals = _vitals_line(case_input["vitals"])
        if vitals:
            lines.append(f"Vitals: {vitals}")
    for lab in case_input.get("labs") or []:
        ref = f" (reference {lab['reference_range']})" if lab.get("reference_range") else ""
        if lab.get("value") is None or (lab.get("status") or "final") != "final":
            lines.append(f"Lab: {lab_result(lab)}{ref}")
            continue
        unit = f" {lab['unit']}" if lab.get("unit") else ""
        lines.append(f"Lab: {lab['name']} {lab['value']}{unit}{ref}")
    return "\n".join(lines)


SECTIONS = (
    ("patient", "Patient"),
    ("chief_complaint", "Chief complaint"),
    ("history_of_present_illness", "History of present illness"),
    ("past_medical_history", "Past medical history"),
    ("medications", "Medications"),
    ("allergies", "Allergies"),
    ("vitals", "Vitals"),
    ("labs", "Labs"),
)


def facts_listing(case_input: dict[str, Any], facts: list[Fact]) -> str:
    """The case as the v2 prompt gives it: facts under their headings, one a line, each
    with the id the answer cites."""
    lines: list[str] = []
    for prefix, heading in SECTIONS:
        mine = [f for f in facts if f.path.split(".")[0].split("[")[0] == prefix]
        if prefix == "patient" and case_input.get("setting"):
            lines.append(f"Setting: {case_input['setting']}")
        if mine:
            lines.append(f"{heading}:")
            lines += [f"[{f.id}] {f.text}" for f in mine]
    return "\n".join(lines)


def render(case_input: dict[str, Any], version: str = CURRENT_VERSION) -> RenderedPrompt:
    if version == "assessment.v1":
        text = load_template(version).substitute(
            case_summary=case_summary(case_input), question=case_input["question"]
        )
    else:
        text = load_template(version).substitute(
            case_facts=facts_listing(case_input, case_facts(case_input)),
            question=case_input["question"],
        )
    return RenderedPrompt(
        version=version, text=text, sha256=hashlib.sha256(text.encode()).hexdigest()
    )


def render_mcq(
    question: str, options: dict[str, str], version: str = MCQ_VERSION
) -> RenderedPrompt:
    lines = "\n".join(f"{letter}. {text}" for letter, text in sorted(options.items()))
    text = load_template(version).substitute(question=question.strip(), options=lines)
    return RenderedPrompt(
        version=version, text=text, sha256=hashlib.sha256(text.encode()).hexdigest()
    )


def template_sha256(version: str) -> str:
    """The hash of the template file itself (a report covers many rendered prompts)."""
    return hashlib.sha256((PROMPTS_DIR / f"{version}.txt").read_bytes()).hexdigest()

"""The case's own facts, each with an id (F1, F2, …), its text and the input field it came
from. The prompt lists them, the answer's schema lets the model cite only their ids, and
the answer gate accepts a citation only when it names one of them.

Facts come from the validated ``CaseInput`` dict, in the order a clinician reads a case:
age and sex, the complaint and the history of present illness (split into phrases at
sentence and comma boundaries), past history, medications, allergies, vitals with their
units, labs with their reference range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PHRASE_BREAK = re.compile(r"(?<=[.;!?])\s+|[;,]\s*|\n+")

VITALS: tuple[tuple[str, str, str], ...] = (
    ("heart_rate", "Heart rate", "/min"),
    ("systolic_bp", "Systolic BP", "mmHg"),
    ("diastolic_bp", "Diastolic BP", "mmHg"),
    ("respiratory_rate", "Respiratory rate", "/min"),
    ("temperature_c", "Temperature", "°C"),
    ("spo2", "SpO2", "%"),
    ("weight_kg", "Weight", "kg"),
)


@dataclass(frozen=True)
class Fact:
    id: str
    text: str
    path: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "text": self.text, "path": self.path}


def phrases(text: str) -> list[str]:
    """Sentence and comma pieces, without their closing full stop."""
    out = []
    for piece in _PHRASE_BREAK.split(text or ""):
        piece = piece.strip().rstrip(".!?").strip()
        if any(ch.isalnum() for ch in piece):
            out.append(piece)
    # Text with no letters or digits at all is still what the clinician wrote.
    return out or ([text.strip()] if text and text.strip() else [])


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def lab_result(lab: dict[str, Any]) -> str:
    """A lab as a clinician reads it: "Troponin I 2.3 ng/mL", "Troponin I 0.9 ng/mL
    (preliminary)", "Troponin I: result pending"; a final result says no status."""
    status = lab.get("status") or "final"
    if lab.get("value") is None:
        return f"{lab['name']}: " + ("result pending" if status == "pending" else status)
    text = f"{lab['name']} {_number(lab['value'])}"
    if lab.get("unit"):
        text += f" {lab['unit']}"
    if status != "final":
        text += f" ({status})"
    return text


def _raw_facts(case_input: dict[str, Any]) -> list[tuple[str, str]]:
    """(text, path) pairs, before ids are given."""
    patient = case_input.get("patient") or {}
    facts: list[tuple[str, str]] = []
    if patient.get("age_years") is not None:
        sex = patient.get("sex") or "unknown"
        facts.append((f"{patient['age_years']}-year-old {sex}", "patient"))
    if patient.get("pregnant") is True:
        facts.append(("pregnant", "patient.pregnant"))
    for field in ("chief_complaint", "history_of_present_illness"):
        facts += [(p, field) for p in phrases(case_input.get(field) or "")]
    for i, item in enumerate(case_input.get("past_medical_history") or []):
        facts.append((item.strip(), f"past_medical_history[{i}]"))
    for i, med in enumerate(case_input.get("medications") or []):
        text = " ".join(
            part for part in (med.get(k) for k in ("name", "dose", "route", "frequency")) if part
        )
        facts.append((text, f"medications[{i}]"))
    for i, allergy in enumerate(case_input.get("allergies") or []):
        detail = ", ".join(p for p in (allergy.get("reaction"), allergy.get("severity")) if p)
        text = f"Allergy: {allergy['substance']}" + (f" ({detail})" if detail else "")
        facts.append((text, f"allergies[{i}]"))
    vitals = case_input.get("vitals") or {}
    for key, label, unit in VITALS:
        if vitals.get(key) is not None:
            facts.append((f"{label} {_number(vitals[key])} {unit}", f"vitals.{key}"))
    for i, lab in enumerate(case_input.get("labs") or []):
        text = lab_result(lab)
        if lab.get("reference_range"):
            text += f" (ref {lab['reference_range']})"
        facts.append((text, f"labs[{i}]"))
    return facts


def case_facts(case_input: dict[str, Any]) -> list[Fact]:
    """The case's facts with ids; a repeated text is listed once (its first place)."""
    seen: set[str] = set()
    out: list[Fact] = []
    for text, path in _raw_facts(case_input):
        key = normalise(text)
        if not text or key in seen:
            continue
        seen.add(key)
        out.append(Fact(id=f"F{len(out) + 1}", text=text, path=path))
    return out


_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.strip().lower()).rstrip(".")


class FactIndex:
    """Look a citation up among the case's facts: by id, or by its exact text (a server
    that ignored the enum may have written the text out); anything else is not a fact."""

    def __init__(self, facts: list[Fact]) -> None:
        self.facts = facts
        self._by_id = {f.id.lower(): f for f in facts}
        self._by_text = {normalise(f.text): f for f in facts}

    def resolve(self, citation: str) -> Fact | None:
        key = normalise(citation).strip("[]")
        return self._by_id.get(key) or self._by_text.get(normalise(citation))

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.facts]

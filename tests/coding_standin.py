"""A tiny stand-in for ``reasoning.coding`` (written on branch ``coding``), installed by
the test session only while that module is not merged here. Same interface; a handful of
terms, enough for the gate's tests. Delete once the real module has landed."""

from __future__ import annotations

import re
from dataclasses import dataclass


def normalise(text: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
    return re.sub(r"^(?:(?:an?|the|acute|likely|probable|possible|suspected) )+", "", text)


@dataclass(frozen=True)
class Coding:
    code: str
    description: str
    category: str
    system: str = "http://hl7.org/fhir/sid/icd-10-cm"


_CODES = {
    "myocardial infarction": ("I21.9", "Acute myocardial infarction, unspecified"),
    "myocardial infarction unspecified": ("I21.9", "Acute myocardial infarction, unspecified"),
    "mi": ("I21.9", "Acute myocardial infarction, unspecified"),
    "stemi": ("I21.3", "ST elevation (STEMI) myocardial infarction of unspecified site"),
    "coronary syndrome": ("I24.9", "Acute ischemic heart disease, unspecified"),
    "pulmonary embolism": ("I26.99", "Other pulmonary embolism without acute cor pulmonale"),
    "pe": ("I26.99", "Other pulmonary embolism without acute cor pulmonale"),
    "community acquired pneumonia": ("J18.9", "Pneumonia, unspecified organism"),
    "pneumonia": ("J18.9", "Pneumonia, unspecified organism"),
    "aortic dissection": ("I71.00", "Dissection of unspecified site of aorta"),
    "pericarditis": ("I30.9", "Acute pericarditis, unspecified"),
}
# Clinical words that match no code here but are clinical terms.
_TERMS = {"chest pain", "unstable angina", "gerd", "costochondritis"}


def code_diagnosis(text: str) -> Coding | None:
    found = _CODES.get(normalise(text))
    return Coding(found[0], found[1], found[0][:3]) if found else None


def is_clinical_term(text: str) -> bool:
    return code_diagnosis(text) is not None or normalise(text) in _TERMS

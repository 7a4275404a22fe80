"""Does an answer rest on the case it was given? A schema-valid answer can still ignore the
case: a differential "supported" by findings the patient does not have, reasoning about
another patient. Such a sample is a recorded failure, like invalid JSON.

The check is lexical and deliberately lenient (a small model paraphrases): word stems of the
answer's diagnoses, actions and red flags, of the facts it cites and of its reasoning steps
are compared with the stems of the case's own values. An answer none of whose parts shares a
single stem with the case ignores it. The share of cited facts that match the case is kept
on every sample.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
STEM_LENGTH = 5
# Words that say nothing about this patient: a match on them is no evidence.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "may",
        "might",
        "more",
        "most",
        "no",
        "not",
        "of",
        "on",
        "or",
        "other",
        "over",
        "per",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "too",
        "under",
        "up",
        "very",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "year",
        "years",
        "old",
        "patient",
        "history",
        "present",
        "case",
        "likely",
        "possible",
        "probable",
        "suspected",
        "acute",
        "chronic",
        "left",
        "right",
    ]
)


def stems(text: str) -> set[str]:
    """Lower-cased word stems (the first few letters; numbers kept whole)."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if word in STOPWORDS:
            continue
        if word[0].isdigit():
            out.add(word)
        elif len(word) >= 3:
            out.add(word[:STEM_LENGTH])
    return out


def _values(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("external_id", "priority", "question"):
                continue
            yield from _values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item)
    elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
        yield str(node)


_VITAL_WORDS = {
    "heart_rate": "heart rate pulse tachycardia bradycardia",
    "systolic_bp": "blood pressure hypertension hypotension systolic",
    "diastolic_bp": "blood pressure diastolic",
    "respiratory_rate": "respiratory rate breathing tachypnea tachypnoea",
    "temperature_c": "temperature fever pyrexia febrile hypothermia",
    "spo2": "oxygen saturation spo2 hypoxia hypoxaemia hypoxemia",
    "weight_kg": "weight",
}


@dataclass(frozen=True)
class CaseFacts:
    """The stems of everything the case says (not the question, which is not a finding)."""

    stems: frozenset[str]

    @classmethod
    def of(cls, case_input: dict[str, Any]) -> CaseFacts:
        words: set[str] = set()
        for value in _values(case_input):
            words |= stems(value)
        for key, value in (case_input.get("vitals") or {}).items():
            if value is not None and key in _VITAL_WORDS:
                words |= stems(_VITAL_WORDS[key])
        return cls(frozenset(words))

    def matches(self, text: str) -> bool:
        return bool(stems(text) & self.stems)


@dataclass(frozen=True)
class Grounding:
    cited_facts: int
    matching_facts: int
    matching_steps: int
    error: str

    @property
    def share(self) -> float | None:
        return round(self.matching_facts / self.cited_facts, 4) if self.cited_facts else None


def check(
    *, cited_facts: list[str], steps: list[str], facts: CaseFacts, conclusions: Sequence[str] = ()
) -> Grounding:
    """``conclusions`` are the answer's own findings (diagnoses, actions, red flags): an answer
    whose conclusions, cited facts and steps all miss the case ignores it."""
    matching_facts = sum(1 for fact in cited_facts if facts.matches(fact))
    matching_steps = sum(1 for step in steps if facts.matches(step))
    matching_conclusions = sum(1 for text in conclusions if facts.matches(text))
    error = ""
    if matching_facts == 0 and matching_steps == 0 and matching_conclusions == 0:
        error = (
            "ignores the case: none of its "
            f"{len(conclusions)} diagnoses/steps/flags, {len(cited_facts)} cited fact(s) or "
            f"{len(steps)} reasoning step(s) mentions anything in the case"
        )
    return Grounding(len(cited_facts), matching_facts, matching_steps, error)

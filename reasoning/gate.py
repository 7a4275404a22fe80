"""The answer gate: what of a schema-valid answer may count. Applied to every sample before
it counts for self-consistency, confidence, cards or screens.

- A cited fact is verified only when it is one of the case's own facts (its id, or its
  exact text from a server that ignored the enum); anything else is dropped.
- A diagnosis, next step or red flag with no verified cited fact is dropped as unsupported.
- Junk is refused: punctuation, booleans, likelihood words, identifiers
  ("mildred-9-19-20-11-20"), single filler words ("add"), and a diagnosis that matches no
  clinical term.
- Duplicates merge: diagnoses by normalised text and by ICD-10-CM code, steps and flags by
  normalised text; the merged item keeps the first place and the union of the citations.
- A sample whose top diagnosis is junk or unsupported is not usable.

Every refusal is written down as a reason, kept in the run's sample summary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reasoning import coding
from reasoning.facts import Fact, FactIndex
from reasoning.schemas import (
    Assessment,
    CheckedAssessment,
    CheckedDiagnosis,
    CheckedNextStep,
    CheckedRedFlag,
    CitedFact,
    DiagnosisCoding,
)

_NON_WORD = re.compile(r"[^a-z0-9]+")
_HEDGES = re.compile(r"^(?:an?|the|acute|likely|probable|possible|suspected)\s+")
BOOLEAN_WORDS = frozenset({"true", "false", "yes", "no", "none", "null", "nil", "n a", "na"})
LIKELIHOOD_WORDS = frozenset(
    {"high", "moderate", "medium", "low", "likely", "unlikely", "possible", "probable",
     "very high", "very low", "unknown", "uncertain", "certain", "critical", "severe",
     "mild", "normal", "abnormal", "positive", "negative"}
)  # fmt: skip
# A step or flag of one word must say what to do or what is wrong, not be filler.
FILLER_WORDS = frozenset(
    {"add", "give", "do", "check", "test", "tests", "treat", "treatment", "start", "stop",
     "continue", "consider", "assess", "evaluate", "monitor", "review", "follow", "other",
     "more", "see", "note", "etc", "action", "step", "flag", "diagnosis", "findings",
     "pharmacology", "management", "medicine", "history", "patient", "case"}
)  # fmt: skip
# An identifier: letters then digit groups joined by - or _, or mostly digits.
_IDENTIFIER = re.compile(r"^[a-z]*[-_]?\d+(?:[-_.]\d+)+$|^[a-z]+(?:[-_]\d+)+$|^[a-z]*\d{3,}$")


def normalise(text: str) -> str:
    """Fold case, punctuation and hedging words so 'Acute MI.' and 'acute mi' agree."""
    text = _NON_WORD.sub(" ", text.lower()).strip()
    previous = None
    while previous != text:
        previous = text
        text = _HEDGES.sub("", text)
    return text


def junk_reason(text: str, *, kind: str) -> str:
    """Why ``text`` is not a finding of ``kind`` (diagnosis, step, flag); '' when it may be."""
    stripped = text.strip()
    words = _NON_WORD.sub(" ", stripped.lower()).split()
    letters = sum(ch.isalpha() for ch in stripped)
    if not words or letters < 2:
        return "punctuation or numbers only"
    folded = " ".join(words)
    if folded in BOOLEAN_WORDS:
        return "a yes/no value, not a finding"
    if folded in LIKELIHOOD_WORDS:
        return "a likelihood word, not a finding"
    compact = stripped.lower().replace(" ", "")
    if _IDENTIFIER.match(compact) or sum(ch.isdigit() for ch in compact) > letters:
        return "an identifier, not a finding"
    if len(words) == 1 and (folded in FILLER_WORDS or (len(folded) < 3 and kind != "diagnosis")):
        return "a filler word, not a finding"
    if kind == "diagnosis" and not coding.is_clinical_term(stripped):
        return "matches no clinical term"
    return ""


@dataclass
class GateResult:
    """The checked answer (None when the sample is not usable) and what the gate saw."""

    checked: CheckedAssessment | None
    reasons: list[str] = field(default_factory=list)
    cited: int = 0
    verified: int = 0
    diagnoses: int = 0
    coded: int = 0
    top_code: str | None = None
    top_category: str | None = None
    top_text: str | None = None

    @property
    def usable(self) -> bool:
        return self.checked is not None

    @property
    def error(self) -> str:
        """The first reason (the top diagnosis's); all of them are in ``reasons``."""
        return "" if self.usable else "not usable: " + (self.reasons or ["no reason"])[0][:200]


def _cite(citations: list[str], index: FactIndex, result: GateResult, where: str) -> list[Fact]:
    facts: list[Fact] = []
    for citation in citations:
        result.cited += 1
        fact = index.resolve(citation)
        if fact is None:
            result.reasons.append(f"{where}: cited {citation[:40]!r}, which is not a case fact")
        else:
            result.verified += 1
            if fact not in facts:
                facts.append(fact)
    return facts


def _cited(facts: list[Fact]) -> list[CitedFact]:
    return [CitedFact(id=f.id, text=f.text, path=f.path) for f in facts]


def _merge(existing: list[CitedFact], more: list[CitedFact]) -> None:
    existing.extend(f for f in more if f not in existing)


def check(assessment: Assessment, facts: list[Fact]) -> GateResult:
    index = FactIndex(facts)
    result = GateResult(checked=None)
    top_problem = ""

    differential: list[CheckedDiagnosis] = []
    by_key: dict[str, CheckedDiagnosis] = {}
    for n, d in enumerate(assessment.differential):
        where = f"diagnosis {n + 1} {d.diagnosis[:40]!r}"
        result.diagnoses += 1
        cited = _cite(d.supporting_facts, index, result, where)
        junk = junk_reason(d.diagnosis, kind="diagnosis")
        problem = f"{where}: {junk}" if junk else ""
        if not problem and not cited:
            problem = f"{where}: unsupported (no verified case fact cited)"
        if n == 0:
            top_problem = problem
        if problem:
            result.reasons.append(problem)
            continue
        found = coding.code_diagnosis(d.diagnosis)
        code = (
            DiagnosisCoding(
                system=found.system,
                code=found.code,
                description=found.description,
                category=found.category,
            )
            if found
            else None
        )
        if code is not None:
            result.coded += 1
        keys = [f"text:{normalise(d.diagnosis)}"] + ([f"code:{code.code}"] if code else [])
        same = next((by_key[k] for k in keys if k in by_key), None)
        if same is not None:
            _merge(same.supporting_facts, _cited(cited))
            result.reasons.append(f"{where}: duplicate of {same.diagnosis[:40]!r}, merged")
        else:
            same = CheckedDiagnosis(
                diagnosis=d.diagnosis.strip(),
                likelihood=d.likelihood,
                coding=code,
                supporting_facts=_cited(cited),
            )
            differential.append(same)
        for k in keys:
            by_key.setdefault(k, same)

    next_steps = _check_items(
        [(s.action, s.based_on) for s in assessment.next_steps], "step", index, result
    )
    red_flags = _check_items(
        [(f.flag, f.based_on) for f in assessment.red_flags], "red flag", index, result
    )

    if top_problem:
        result.reasons.insert(0, f"top {top_problem}")
        return result
    top = differential[0]
    result.top_text = normalise(top.diagnosis)
    result.top_code = top.coding.code if top.coding else None
    result.top_category = top.coding.category if top.coding else None
    result.checked = CheckedAssessment(
        reasoning_steps=[s for s in assessment.reasoning_steps if not junk_reason(s, kind="step")],
        differential=differential,
        next_steps=[CheckedNextStep(action=text, based_on=cited) for text, cited in next_steps],
        red_flags=[CheckedRedFlag(flag=text, based_on=cited) for text, cited in red_flags],
        stated_confidence=assessment.stated_confidence,
    )
    return result


def _check_items(
    items: list[tuple[str, list[str]]], kind: str, index: FactIndex, result: GateResult
) -> list[tuple[str, list[CitedFact]]]:
    kept: dict[str, tuple[str, list[CitedFact]]] = {}
    for n, (text, citations) in enumerate(items):
        where = f"{kind} {n + 1} {text[:40]!r}"
        cited = _cite(citations, index, result, where)
        junk = junk_reason(text, kind=kind)
        if junk:
            result.reasons.append(f"{where}: {junk}")
            continue
        if not cited:
            result.reasons.append(f"{where}: unsupported (no verified case fact cited)")
            continue
        key = normalise(text)
        if key in kept:
            _merge(kept[key][1], _cited(cited))
            result.reasons.append(f"{where}: duplicate, merged")
            continue
        kept[key] = (text.strip(), _cited(cited))
    return list(kept.values())

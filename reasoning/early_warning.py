"""Early-warning scores Bedside computes itself from a case's vital signs, with no model:
NEWS2, qSOFA and the shock index. A safety net beside the model's answer, so it takes a
``CaseInput``-shaped dict and nothing else (no Django, no database).

Every score lists its components (the points each vital sign scored) and what it could not
see (``missing``): a parameter the case does not record is never scored, and a score
missing one of its measured parameters says it is partial. NEWS2's consciousness and
supplemental oxygen, and qSOFA's mentation, are not in ``CaseInput``: they are always
listed as missing and assumed normal (alert, breathing air), as the RCP chart scores them
when they are normal.

Values between two rows of a chart (a respiratory rate of 20.5, a temperature of 36.05)
are placed by the rows' numeric edges: each row is read as a range closed above, from just
over the previous row's top value up to and including its own top value. So 20.5 breaths/min
is above 20 (the top of 12-20) and scores as 21-24; 36.05 °C is above 36.0 (the top of
35.1-36.0) and scores as 36.1-38.0; 90.5 mmHg is above 90 and scores as 91-100. Integers and
the chart's own one-decimal temperatures land exactly where the printed chart puts them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

NO_VITALS = "no vital signs recorded"
NO_SCORED_VITALS = (
    "none of the vital signs these scores use is recorded (respiratory rate, SpO₂, "
    "systolic blood pressure, heart rate, temperature)"
)
SHOCK_INDEX_NOT_COMPUTED = "shock index not computed: it needs both heart rate and systolic BP"
# The same reasons as codes, for the audit record.
_NOT_SCORED_CODES = {
    NO_VITALS: "no_vitals",
    NO_SCORED_VITALS: "no_scored_vitals",
    SHOCK_INDEX_NOT_COMPUTED: "shock_index_needs_heart_rate_and_systolic_bp",
}

NEWS2 = "NEWS2"
QSOFA = "qSOFA"
SHOCK_INDEX = "Shock index"

# Risk words. NEWS2's are the RCP's clinical-risk categories (2017 report, chart 2).
LOW, LOW_MEDIUM, MEDIUM, HIGH = "low", "low-medium", "medium", "high"
NORMAL, ELEVATED = "normal", "elevated"


class Component(TypedDict):
    parameter: str
    label: str
    value: float | int
    unit: str
    points: int | None


class Missing(TypedDict):
    parameter: str
    label: str
    # What the score took in its place ("alert", "air"), or None: not scored at all.
    assumed: str | None


class Score(TypedDict):
    name: str
    score: int | float
    risk: str
    partial: bool  # a measured parameter is missing: the true score may be higher
    components: list[Component]
    missing: list[Missing]


class EarlyWarning(TypedDict):
    scores: list[Score]
    # Why a score is absent (no vitals at all, or the shock index lacking one of its two).
    not_scored: list[str]


_LABELS = {
    "respiratory_rate": ("Respiratory rate", "breaths/min"),
    "spo2": ("SpO₂", "%"),
    "supplemental_oxygen": ("Air or oxygen", ""),
    "systolic_bp": ("Systolic BP", "mmHg"),
    "heart_rate": ("Heart rate", "beats/min"),
    "consciousness": ("Consciousness", ""),
    "temperature_c": ("Temperature", "°C"),
    "mentation": ("Altered mentation", ""),
}

# NEWS2 chart (RCP 2017), SpO₂ scale 1: (top of the row, points), rows bottom up; a value
# above the last row's top scores ``_ABOVE[parameter]``.
_NEWS2_ROWS: dict[str, tuple[tuple[float, int], ...]] = {
    "respiratory_rate": ((8, 3), (11, 1), (20, 0), (24, 2)),
    "spo2": ((91, 3), (93, 2), (95, 1)),
    "systolic_bp": ((90, 3), (100, 2), (110, 1), (219, 0)),
    "heart_rate": ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2)),
    "temperature_c": ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)),
}
_ABOVE = {"respiratory_rate": 3, "spo2": 0, "systolic_bp": 3, "heart_rate": 3, "temperature_c": 2}
_NEWS2_ASSUMED = {"supplemental_oxygen": "air", "consciousness": "alert"}

# Shock index bands. Allgöwer and Burri (1967), who introduced it, give 0.5 to 0.7 as the
# normal range; an index of 1.0 or more marks shock and goes with higher mortality and
# transfusion need (Rady et al., 1994; Mutschler et al., 2013, whose classification starts
# moderate shock at 1.0). Between the two, "elevated".
_SHOCK_INDEX_ELEVATED = 0.7
_SHOCK_INDEX_HIGH = 1.0


def _vital(vitals: Mapping[str, Any], name: str) -> float | int | None:
    value = vitals.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def news2_points(parameter: str, value: float) -> int:
    """The NEWS2 points of one measured parameter (SpO₂ scale 1)."""
    for top, points in _NEWS2_ROWS[parameter]:
        if value <= top:
            return points
    return _ABOVE[parameter]


def _component(parameter: str, value: float | int, points: int | None) -> Component:
    label, unit = _LABELS[parameter]
    return {"parameter": parameter, "label": label, "value": value, "unit": unit, "points": points}


def _missing(parameter: str, assumed: str | None = None) -> Missing:
    return {"parameter": parameter, "label": _LABELS[parameter][0], "assumed": assumed}


def _news2(vitals: Mapping[str, Any]) -> Score | None:
    components: list[Component] = []
    missing: list[Missing] = []
    # In the chart's order.
    for parameter in (
        "respiratory_rate",
        "spo2",
        "supplemental_oxygen",
        "systolic_bp",
        "heart_rate",
        "consciousness",
        "temperature_c",
    ):
        if parameter in _NEWS2_ASSUMED:
            missing.append(_missing(parameter, _NEWS2_ASSUMED[parameter]))
            continue
        value = _vital(vitals, parameter)
        if value is None:
            missing.append(_missing(parameter))
        else:
            components.append(_component(parameter, value, news2_points(parameter, value)))
    if not components:
        return None
    total = sum(c["points"] or 0 for c in components)
    if total >= 7:
        risk = HIGH
    elif total >= 5:
        risk = MEDIUM
    elif any(c["points"] == 3 for c in components):
        # RCP: a score of 3 in any single parameter is low-medium risk (urgent ward-based
        # response) unless the aggregate already puts the patient higher.
        risk = LOW_MEDIUM
    else:
        risk = LOW
    return {
        "name": NEWS2,
        "score": total,
        "risk": risk,
        "partial": any(m["assumed"] is None for m in missing),
        "components": components,
        "missing": missing,
    }


def _qsofa(vitals: Mapping[str, Any]) -> Score | None:
    """qSOFA (Seymour et al., JAMA 2016; Sepsis-3): respiratory rate ≥ 22, systolic BP ≤ 100,
    altered mentation, a point each; 2 or more flags high risk."""
    components: list[Component] = []
    missing: list[Missing] = []
    rate = _vital(vitals, "respiratory_rate")
    systolic = _vital(vitals, "systolic_bp")
    if rate is None:
        missing.append(_missing("respiratory_rate"))
    else:
        components.append(_component("respiratory_rate", rate, int(rate >= 22)))
    if systolic is None:
        missing.append(_missing("systolic_bp"))
    else:
        components.append(_component("systolic_bp", systolic, int(systolic <= 100)))
    missing.append(_missing("mentation", "not altered"))
    if not components:
        return None
    total = sum(c["points"] or 0 for c in components)
    return {
        "name": QSOFA,
        "score": total,
        "risk": HIGH if total >= 2 else LOW,
        "partial": any(m["assumed"] is None for m in missing),
        "components": components,
        "missing": missing,
    }


def _shock_index(vitals: Mapping[str, Any]) -> Score | None:
    rate = _vital(vitals, "heart_rate")
    systolic = _vital(vitals, "systolic_bp")
    if rate is None or systolic is None:
        return None
    index = round(rate / systolic, 2)
    if index >= _SHOCK_INDEX_HIGH:
        risk = HIGH
    elif index >= _SHOCK_INDEX_ELEVATED:
        risk = ELEVATED
    else:
        risk = NORMAL
    return {
        "name": SHOCK_INDEX,
        "score": index,
        "risk": risk,
        "partial": False,
        "components": [
            _component("heart_rate", rate, None),
            _component("systolic_bp", systolic, None),
        ],
        "missing": [],
    }


def early_warning(case: Mapping[str, Any]) -> EarlyWarning:
    """The scores of a ``CaseInput``-shaped case, and why any is absent."""
    vitals = case.get("vitals") or {}
    if not any(_vital(vitals, name) is not None for name in vitals):
        return {"scores": [], "not_scored": [NO_VITALS]}
    scores = [s for s in (_news2(vitals), _qsofa(vitals), _shock_index(vitals)) if s]
    not_scored: list[str] = []
    if not scores:
        not_scored.append(NO_SCORED_VITALS)
    elif not any(s["name"] == SHOCK_INDEX for s in scores):
        not_scored.append(SHOCK_INDEX_NOT_COMPUTED)
    return {"scores": scores, "not_scored": not_scored}


def alert(scores: Sequence[Mapping[str, Any]]) -> bool:
    """A score high enough that the patient needs assessing now, whatever the model says:
    NEWS2 7 or more, any single NEWS2 parameter scoring 3, or qSOFA 2 or more."""
    for score in scores:
        if score["name"] == NEWS2 and (
            score["score"] >= 7 or any(c["points"] == 3 for c in score["components"])
        ):
            return True
        if score["name"] == QSOFA and score["score"] >= 2:
            return True
    return False


def alert_reasons(scores: Sequence[Mapping[str, Any]]) -> list[str]:
    """Why ``alert`` is true, in words a clinician expects ("NEWS2 9 (high)",
    "respiratory rate scored 3 on NEWS2"); empty when it is not."""
    reasons: list[str] = []
    for score in scores:
        if score["name"] == NEWS2:
            if score["score"] >= 7:
                reasons.append(f"NEWS2 {score['score']} ({score['risk']})")
            reasons += [
                f"{c['label']} {c['value']} {c['unit']} scored 3 on NEWS2".replace("  ", " ")
                for c in score["components"]
                if c["points"] == 3
            ]
        elif score["name"] == QSOFA and score["score"] >= 2:
            reasons.append(f"qSOFA {score['score']} ({score['risk']})")
    return reasons


def alert_headline(scores: Sequence[Mapping[str, Any]]) -> str:
    """The alert in a few words: the aggregate scores that raise it ("NEWS2 9 (high)"), or,
    when only a single parameter does, that parameter; empty when there is no alert."""
    reasons = alert_reasons(scores)
    aggregate = [r for r in reasons if not r.endswith(" on NEWS2")]
    return " and ".join(aggregate or reasons)


def audit_summary(result: EarlyWarning) -> dict[str, Any]:
    """What the audit record keeps of the scores: names, numbers and parameter codes, never
    the vital signs themselves (the case input holds those, encrypted)."""
    return {
        "scores": [
            {
                "name": s["name"],
                "score": s["score"],
                "risk": s["risk"],
                "partial": s["partial"],
                "points": {c["parameter"]: c["points"] for c in s["components"]},
                "missing": [m["parameter"] for m in s["missing"]],
            }
            for s in result["scores"]
        ],
        "not_scored": [_NOT_SCORED_CODES[reason] for reason in result["not_scored"]],
        "alert": alert(result["scores"]),
    }

"""Early-warning scores against hand-worked examples from the published charts: NEWS2 (RCP
2017, SpO₂ scale 1) at every band boundary, qSOFA (Sepsis-3), the shock index, and cases
with no or only some vital signs."""

from __future__ import annotations

from typing import Any

import pytest

from reasoning.early_warning import (
    NO_SCORED_VITALS,
    NO_VITALS,
    SHOCK_INDEX_NOT_COMPUTED,
    Score,
    alert,
    alert_headline,
    alert_reasons,
    audit_summary,
    early_warning,
    news2_points,
)
from reasoning.red_flags import credible_red_flags, is_junk

# Each row: a value on the chart's edge and the points the chart gives it.
NEWS2_BOUNDARIES = [
    *[("respiratory_rate", v, p) for v, p in [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0)]],
    *[("respiratory_rate", v, p) for v, p in [(21, 2), (24, 2), (25, 3)]],
    *[("spo2", v, p) for v, p in [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)]],
    *[("systolic_bp", v, p) for v, p in [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1)]],
    *[("systolic_bp", v, p) for v, p in [(111, 0), (219, 0), (220, 3)]],
    *[("heart_rate", v, p) for v, p in [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0)]],
    *[("heart_rate", v, p) for v, p in [(91, 1), (110, 1), (111, 2), (130, 2), (131, 3)]],
    *[("temperature_c", v, p) for v, p in [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0)]],
    *[("temperature_c", v, p) for v, p in [(38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)]],
]


@pytest.mark.parametrize(("parameter", "value", "points"), NEWS2_BOUNDARIES)
def test_news2_points_at_every_band_edge_match_the_rcp_chart(
    parameter: str, value: float, points: int
) -> None:
    assert news2_points(parameter, value) == points


@pytest.mark.parametrize(
    ("parameter", "value", "points"),
    [
        # Between two rows: above a row's top value is the next row up.
        ("respiratory_rate", 20.5, 2),
        ("respiratory_rate", 8.5, 1),
        ("temperature_c", 36.05, 0),
        ("temperature_c", 35.05, 1),
        ("temperature_c", 39.05, 2),
        ("systolic_bp", 90.5, 2),
        ("heart_rate", 130.5, 3),
        ("spo2", 95.5, 0),
        # Far ends.
        ("respiratory_rate", 4, 3),
        ("heart_rate", 300, 3),
        ("spo2", 100, 0),
        ("temperature_c", 25, 3),
    ],
)
def test_news2_places_values_between_rows_by_the_rows_numeric_edges(
    parameter: str, value: float, points: int
) -> None:
    assert news2_points(parameter, value) == points


def case(**vitals: Any) -> dict[str, Any]:
    """A ``CaseInput``-shaped case with these vitals (the rest null, as the API stores it)."""
    names = (
        "heart_rate",
        "systolic_bp",
        "diastolic_bp",
        "respiratory_rate",
        "temperature_c",
        "spo2",
        "weight_kg",
    )
    return {
        "patient": {"age_years": 71, "sex": "female", "pregnant": False},
        "chief_complaint": "Breathless after a long flight",
        "question": "What is the most likely diagnosis?",
        "vitals": {name: vitals.get(name) for name in names},
    }


def scores_by_name(data: dict[str, Any]) -> dict[str, Score]:
    return {s["name"]: s for s in early_warning(data)["scores"]}


def test_held_out_pe_case_scores_news2_8_high_from_three_vitals() -> None:
    # 71-year-old woman, breathless after a long flight: HR 118, RR 26, SpO₂ 89 %, nothing
    # else recorded. By hand on the RCP chart (scale 1):
    #   respiration 26 (≥25)       3
    #   SpO₂ 89 (≤91)              3
    #   air or oxygen: not recorded, assumed air        0
    #   systolic BP: not recorded, not scored
    #   pulse 118 (111-130)        2
    #   consciousness: not recorded, assumed alert       0
    #   temperature: not recorded, not scored
    #   NEWS2 = 8 → high (≥7), partial (BP and temperature missing).
    # qSOFA: RR 26 ≥ 22 → 1; systolic not recorded; mentation assumed normal → 1, partial.
    # Shock index: needs systolic BP → not computed.
    result = early_warning(case(heart_rate=118, respiratory_rate=26, spo2=89))
    scores = {s["name"]: s for s in result["scores"]}
    news2 = scores["NEWS2"]
    assert (news2["score"], news2["risk"], news2["partial"]) == (8, "high", True)
    assert [(c["parameter"], c["value"], c["points"]) for c in news2["components"]] == [
        ("respiratory_rate", 26, 3),
        ("spo2", 89, 3),
        ("heart_rate", 118, 2),
    ]
    assert [(m["parameter"], m["assumed"]) for m in news2["missing"]] == [
        ("supplemental_oxygen", "air"),
        ("systolic_bp", None),
        ("consciousness", "alert"),
        ("temperature_c", None),
    ]
    qsofa = scores["qSOFA"]
    assert (qsofa["score"], qsofa["risk"], qsofa["partial"]) == (1, "low", True)
    assert "Shock index" not in scores
    assert result["not_scored"] == [SHOCK_INDEX_NOT_COMPUTED]
    assert alert(result["scores"])
    assert alert_reasons(result["scores"]) == [
        "NEWS2 8 (high)",
        "Respiratory rate 26 breaths/min scored 3 on NEWS2",
        "SpO₂ 89 % scored 3 on NEWS2",
    ]


def test_held_out_pe_case_with_full_vitals_scores_news2_9_and_shock_index_1_13() -> None:
    # The same patient with BP 104/68 and 37.2 °C recorded:
    #   RR 26 → 3, SpO₂ 89 → 3, air → 0, systolic 104 (101-110) → 1, pulse 118 → 2,
    #   alert → 0, 37.2 °C (36.1-38.0) → 0: NEWS2 = 9, high, complete.
    # qSOFA: RR 26 → 1, systolic 104 > 100 → 0: 1, low.
    # Shock index: 118 / 104 = 1.1346… → 1.13, high (≥ 1.0).
    scores = scores_by_name(
        case(
            heart_rate=118,
            respiratory_rate=26,
            spo2=89,
            systolic_bp=104,
            diastolic_bp=68,
            temperature_c=37.2,
        )
    )
    assert (scores["NEWS2"]["score"], scores["NEWS2"]["risk"]) == (9, "high")
    assert scores["NEWS2"]["partial"] is False
    assert (scores["qSOFA"]["score"], scores["qSOFA"]["risk"]) == (1, "low")
    assert scores["qSOFA"]["partial"] is False
    assert [m["parameter"] for m in scores["qSOFA"]["missing"]] == ["mentation"]
    assert (scores["Shock index"]["score"], scores["Shock index"]["risk"]) == (1.13, "high")


def test_news2_all_normal_is_0_low_and_raises_no_alert() -> None:
    # RR 16, SpO₂ 98, systolic 125, pulse 72, 36.8 °C: every parameter 0.
    scores = early_warning(
        case(respiratory_rate=16, spo2=98, systolic_bp=125, heart_rate=72, temperature_c=36.8)
    )["scores"]
    news2 = scores[0]
    assert (news2["name"], news2["score"], news2["risk"]) == ("NEWS2", 0, "low")
    assert not alert(scores)
    assert alert_reasons(scores) == []


@pytest.mark.parametrize(
    ("vitals", "score", "risk"),
    [
        # RR 21 (2) + pulse 95 (1) + 38.5 °C (1) = 4: low.
        ({"respiratory_rate": 21, "heart_rate": 95, "temperature_c": 38.5}, 4, "low"),
        # A single 3 (SpO₂ 90) with an aggregate of 3: low-medium, the RCP's wording.
        ({"spo2": 90, "heart_rate": 80, "respiratory_rate": 16}, 3, "low-medium"),
        # RR 22 (2) + SpO₂ 94 (1) + pulse 112 (2) = 5: medium.
        ({"respiratory_rate": 22, "spo2": 94, "heart_rate": 112}, 5, "medium"),
        # A single 3 (pulse 135) inside an aggregate of 6: medium wins over low-medium.
        ({"heart_rate": 135, "respiratory_rate": 22, "systolic_bp": 105}, 6, "medium"),
        # RR 25 (3) + systolic 95 (2) + pulse 115 (2) = 7: high.
        ({"respiratory_rate": 25, "systolic_bp": 95, "heart_rate": 115}, 7, "high"),
    ],
)
def test_news2_risk_bands(vitals: dict[str, Any], score: int, risk: str) -> None:
    news2 = scores_by_name(case(**vitals))["NEWS2"]
    assert (news2["score"], news2["risk"]) == (score, risk)


def test_a_single_parameter_scoring_3_raises_the_alert_below_7() -> None:
    scores = early_warning(case(spo2=90, heart_rate=80, respiratory_rate=16))["scores"]
    assert alert(scores)
    assert alert_reasons(scores) == ["SpO₂ 90 % scored 3 on NEWS2"]


@pytest.mark.parametrize(
    ("rate", "systolic", "score", "risk"),
    [
        (21, 101, 0, "low"),  # just below both thresholds
        (22, 101, 1, "low"),  # RR 22 counts
        (21, 100, 1, "low"),  # systolic 100 counts
        (22, 100, 2, "high"),  # both
    ],
)
def test_qsofa_0_to_2(rate: int, systolic: int, score: int, risk: str) -> None:
    # Pulse 80 and SpO₂ 97 keep NEWS2 from raising the alert on its own: only qSOFA can.
    scores = early_warning(
        case(respiratory_rate=rate, systolic_bp=systolic, heart_rate=80, spo2=97)
    )["scores"]
    qsofa = next(s for s in scores if s["name"] == "qSOFA")
    assert (qsofa["score"], qsofa["risk"]) == (score, risk)
    assert [(m["parameter"], m["assumed"]) for m in qsofa["missing"]] == [
        ("mentation", "not altered")
    ]
    assert alert(scores) is (score >= 2)


@pytest.mark.parametrize(
    ("heart_rate", "systolic", "index", "risk"),
    [
        (60, 120, 0.5, "normal"),
        (83, 120, 0.69, "normal"),  # 0.6917 rounds to 0.69
        (84, 120, 0.7, "elevated"),
        (99, 100, 0.99, "elevated"),
        (100, 100, 1.0, "high"),
        (140, 80, 1.75, "high"),
    ],
)
def test_shock_index_bands(heart_rate: int, systolic: int, index: float, risk: str) -> None:
    shock = scores_by_name(case(heart_rate=heart_rate, systolic_bp=systolic))["Shock index"]
    assert (shock["score"], shock["risk"]) == (index, risk)
    assert [(c["parameter"], c["value"]) for c in shock["components"]] == [
        ("heart_rate", heart_rate),
        ("systolic_bp", systolic),
    ]


def test_shock_index_alone_does_not_raise_the_alert() -> None:
    # HR 100 / systolic 100: index 1.0 (high), NEWS2 1 + 2 = 3 with no single 3, qSOFA 1.
    scores = early_warning(case(heart_rate=100, systolic_bp=100))["scores"]
    assert not alert(scores)


@pytest.mark.parametrize(
    "data",
    [
        case(),
        {"patient": {"age_years": 40, "sex": "male"}, "chief_complaint": "x", "question": "y"},
        {**case(), "vitals": None},
    ],
)
def test_a_case_with_no_vitals_has_no_scores_and_says_so(data: dict[str, Any]) -> None:
    result = early_warning(data)
    assert (result["scores"], result["not_scored"]) == ([], [NO_VITALS])
    assert not alert(result["scores"])
    assert audit_summary(result) == {"scores": [], "not_scored": ["no_vitals"], "alert": False}


def test_weight_and_diastolic_alone_score_nothing_and_say_why() -> None:
    result = early_warning(case(weight_kg=70, diastolic_bp=80))
    assert (result["scores"], result["not_scored"]) == ([], [NO_SCORED_VITALS])


def test_partial_vitals_give_partial_scores_that_list_what_is_missing() -> None:
    result = early_warning(case(temperature_c=39.5))
    scores = {s["name"]: s for s in result["scores"]}
    # Only NEWS2 sees a temperature: 39.5 (≥39.1) → 2, low, partial.
    assert list(scores) == ["NEWS2"]
    news2 = scores["NEWS2"]
    assert (news2["score"], news2["risk"], news2["partial"]) == (2, "low", True)
    assert [m["parameter"] for m in news2["missing"] if m["assumed"] is None] == [
        "respiratory_rate",
        "spo2",
        "systolic_bp",
        "heart_rate",
    ]
    assert result["not_scored"] == [SHOCK_INDEX_NOT_COMPUTED]


def test_the_audit_summary_holds_points_and_codes_not_vital_signs() -> None:
    summary = audit_summary(early_warning(case(heart_rate=118, respiratory_rate=26, spo2=89)))
    assert summary["alert"] is True
    assert summary["scores"][0] == {
        "name": "NEWS2",
        "score": 8,
        "risk": "high",
        "partial": True,
        "points": {"respiratory_rate": 3, "spo2": 3, "heart_rate": 2},
        "missing": ["supplemental_oxygen", "systolic_bp", "consciousness", "temperature_c"],
    }
    assert "118" not in str(summary) and "89" not in str(summary)


def test_the_alert_headline_names_the_aggregate_score_or_else_the_parameter() -> None:
    high = early_warning(case(heart_rate=118, respiratory_rate=26, spo2=89))["scores"]
    assert alert_headline(high) == "NEWS2 8 (high)"
    single = early_warning(case(spo2=90, heart_rate=80))["scores"]
    assert alert_headline(single) == "SpO₂ 90 % scored 3 on NEWS2"
    both = early_warning(case(respiratory_rate=25, systolic_bp=95, heart_rate=115))["scores"]
    assert alert_headline(both) == "NEWS2 7 (high) and qSOFA 2 (high)"
    assert alert_headline(early_warning(case(heart_rate=72))["scores"]) == ""


@pytest.mark.parametrize(
    ("text", "junk"),
    [
        *[(t, True) for t in ("True", "False", "High", "high ", ",", "},{", "1. ]{", "N/A")],
        *[(t, True) for t in ("mildred-9-19-20-11-20", "add", "x")],
        *[(t, False) for t in ("Raised troponin", "Hypoxia (SpO2 89%)", "Sepsis", "Shock")],
    ],
)
def test_junk_red_flags_are_recognised(text: str, junk: bool) -> None:
    assert is_junk(text) is junk


def test_credible_red_flags_drop_junk_and_repeats() -> None:
    flags = [{"flag": f} for f in ("High", "Hypoxia", "hypoxia.", "True", "Tachycardia")]
    assert [f["flag"] for f in credible_red_flags(flags)] == ["Hypoxia", "Tachycardia"]

"""Calibration metrics against a small example worked by hand."""

from __future__ import annotations

import pytest

from reasoning.metrics import (
    accuracy,
    auroc,
    brier_score,
    expected_calibration_error,
    reliability_bins,
)

# Four answers: confidence and whether each was right.
CONF = [0.9, 0.8, 0.3, 0.6]
RIGHT = [True, False, False, True]


def test_accuracy_and_brier_by_hand() -> None:
    assert accuracy(RIGHT) == 0.5
    # (0.1² + 0.8² + 0.3² + 0.4²) / 4 = (0.01 + 0.64 + 0.09 + 0.16) / 4 = 0.225
    assert brier_score(CONF, RIGHT) == pytest.approx(0.225)


def test_ece_by_hand_with_five_bins() -> None:
    # Bins of width 0.2: [0.2,0.4): 0.3 wrong → gap 0.3; [0.6,0.8): 0.6 right → gap 0.4;
    # [0.8,1.0]: 0.9 right, 0.8 wrong → mean conf 0.85, accuracy 0.5 → gap 0.35.
    # ECE = 1/4·0.3 + 1/4·0.4 + 2/4·0.35 = 0.075 + 0.1 + 0.175 = 0.35
    assert expected_calibration_error(CONF, RIGHT, bins=5) == pytest.approx(0.35)
    counts = [(b.lower, b.count) for b in reliability_bins(CONF, RIGHT, bins=5)]
    assert counts == [(0.2, 1), (0.6, 1), (0.8, 2)]


def test_auroc_by_hand() -> None:
    # Right: 0.9, 0.6. Wrong: 0.8, 0.3. Pairs won: 0.9>0.8, 0.9>0.3, 0.6>0.3; lost 0.6<0.8.
    assert auroc(CONF, RIGHT) == pytest.approx(3 / 4)
    assert auroc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert auroc([0.2, 0.4], [True, True]) is None

"""Isotonic and Platt maps, checked by hand."""

from __future__ import annotations

import pytest

from reasoning import calibration


def test_isotonic_pools_adjacent_violators_by_hand() -> None:
    fitted = calibration.fit_isotonic([0.1, 0.2, 0.3, 0.4], [False, True, False, True])
    assert fitted["points"] == [[0.1, 0.0], [0.25, 0.5], [0.4, 1.0]]
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.05) == 0.0
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.3) == pytest.approx(0.6667, abs=1e-4)
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.9) == 1.0


def test_isotonic_is_never_decreasing() -> None:
    conf = [i / 20 for i in range(20)]
    correct = [i % 3 == 0 or i > 12 for i in range(20)]
    fitted = calibration.fit_isotonic(conf, correct)
    ys = [calibration.apply(calibration.ISOTONIC, fitted, x / 100) for x in range(101)]
    assert ys == sorted(ys)


def test_platt_rises_with_confidence_when_confidence_predicts_correctness() -> None:
    conf = [0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.35, 0.65]
    correct = [False, False, False, True, True, True, True, True, False]
    fitted = calibration.fit_platt(conf, correct)
    low = calibration.apply(calibration.PLATT, fitted, 0.2)
    high = calibration.apply(calibration.PLATT, fitted, 0.9)
    assert fitted["a"] > 0
    assert low < 0.5 < high


def test_platt_stays_finite_when_every_item_was_right() -> None:
    fitted = calibration.fit_platt([0.4, 0.6, 0.8], [True, True, True])
    assert 0.5 < calibration.apply(calibration.PLATT, fitted, 0.6) < 1.0


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibration.fit("magic", [0.5], [True])


def test_isotonic_merges_tied_confidences_before_pooling() -> None:
    # Self-consistency confidences are discrete: ties are the normal case. scikit-learn's
    # IsotonicRegression gives 0.5 at both 0.5 and 1.0 here.
    fitted = calibration.fit_isotonic([0.5, 0.5, 1.0, 1.0], [False, True, False, True])
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.5) == 0.5
    assert calibration.apply(calibration.ISOTONIC, fitted, 1.0) == 0.5
    assert fitted["points"] == [[0.5, 0.5], [1.0, 0.5]]


def test_isotonic_with_every_confidence_tied_is_the_overall_accuracy() -> None:
    fitted = calibration.fit_isotonic([0.6] * 4, [True, False, True, True])
    assert fitted == {"points": [[0.6, 0.75]], "counts": [4]}
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.1) == 0.75
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.9) == 0.75


def test_isotonic_leaves_monotone_data_unchanged() -> None:
    fitted = calibration.fit_isotonic([0.2, 0.2, 0.4, 0.8, 0.8], [False, False, True, True, True])
    # Equal neighbours are not violators: each confidence keeps its own point.
    assert fitted == {"points": [[0.2, 0.0], [0.4, 1.0], [0.8, 1.0]], "counts": [2, 1, 2]}
    assert calibration.apply(calibration.ISOTONIC, fitted, 0.3) == 0.5


def test_isotonic_weighs_a_tie_by_its_number_of_items() -> None:
    # Three items at 0.2 (2 right) outweigh one at 0.6 (wrong): pooled, 2 of 4 right, at
    # the items' mean confidence 0.3. Pooling the tie as one point would give 1/3.
    fitted = calibration.fit_isotonic([0.2, 0.2, 0.2, 0.6], [True, True, False, False])
    assert fitted == {"points": [[0.3, 0.5]], "counts": [4]}


def test_accuracy_is_put_in_words_a_reader_can_picture() -> None:
    from reasoning.selectors import times_in_words

    assert times_in_words(1, 3) == "1 in 3"
    assert times_in_words(5, 7) == "5 in 7"
    assert times_in_words(10, 40) == "1 in 4"
    assert times_in_words(13, 40) == "about 1 in 3"
    assert times_in_words(0, 12) == "0 in 12"


def test_platt_does_not_overshoot_when_a_confidence_is_zero() -> None:
    # logit(0) is about -13.8: a full Newton step overflowed math.exp here, and without a
    # line search ran off to a ≈ 19 000 (a step function).
    fitted = calibration.fit_platt([0.98, 0.6333, 0.3467, 0.0], [True, False, True, False])
    assert 0 < fitted["a"] < 1
    values = [calibration.apply(calibration.PLATT, fitted, x) for x in (0.0, 0.35, 0.63, 0.98)]
    assert values == sorted(values) and values[0] > 0.2 and values[-1] < 0.7

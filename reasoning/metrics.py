"""Calibration metrics for validation reports: how often answers at a given confidence
were right. Plain functions over (confidence, correct) pairs; no numpy needed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def accuracy(correct: Sequence[bool]) -> float:
    return sum(correct) / len(correct) if correct else 0.0


def brier_score(confidence: Sequence[float], correct: Sequence[bool]) -> float:
    """Mean squared gap between confidence and outcome (0 is perfect, 1 is worst)."""
    pairs = list(zip(confidence, correct, strict=True))
    return sum((c - float(y)) ** 2 for c, y in pairs) / len(pairs) if pairs else 0.0


@dataclass(frozen=True)
class Bin:
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


def reliability_bins(
    confidence: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> list[Bin]:
    """Equal-width bins over [0, 1]; a confidence of exactly 1.0 falls in the last bin."""
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, y in zip(confidence, correct, strict=True):
        grouped[min(int(c * bins), bins - 1)].append((c, y))
    out = []
    for i, items in enumerate(grouped):
        if items:
            out.append(
                Bin(
                    lower=i / bins,
                    upper=(i + 1) / bins,
                    count=len(items),
                    mean_confidence=sum(c for c, _ in items) / len(items),
                    accuracy=sum(1 for _, y in items if y) / len(items),
                )
            )
    return out


def expected_calibration_error(
    confidence: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> float:
    total = len(confidence)
    if not total:
        return 0.0
    return sum(
        b.count / total * abs(b.accuracy - b.mean_confidence)
        for b in reliability_bins(confidence, correct, bins=bins)
    )


def auroc(confidence: Sequence[float], correct: Sequence[bool]) -> float | None:
    """Probability that a right answer got more confidence than a wrong one (ties count
    half). None when the outcomes are all right or all wrong: it is then undefined."""
    right = [c for c, y in zip(confidence, correct, strict=True) if y]
    wrong = [c for c, y in zip(confidence, correct, strict=True) if not y]
    if not right or not wrong:
        return None
    wins = sum(1.0 if r > w else 0.5 if r == w else 0.0 for r in right for w in wrong)
    return wins / (len(right) * len(wrong))

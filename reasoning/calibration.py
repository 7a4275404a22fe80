"""Maps from raw confidence to observed accuracy, fitted on a validation report.

Plain functions over (confidence, correct) pairs. Isotonic regression (pool adjacent
violators) is the default: it assumes only that higher raw confidence never means lower
accuracy. Platt scaling (a logistic curve on the log-odds of the raw value) suits very small
reports, where isotonic steps would be coarse.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

ISOTONIC = "isotonic.v1"
PLATT = "platt.v1"
_EPS = 1e-6


def fit_isotonic(confidence: Sequence[float], correct: Sequence[bool]) -> dict[str, Any]:
    """Pool adjacent violators. Returns ``{"points": [[x, y], ...], "counts": [...]}``: one
    point per pooled block (x = mean raw confidence of its items, y = their accuracy),
    increasing in x and never decreasing in y.

    Items with the same raw confidence are first merged into one point weighted by their
    number: a map gives one value per confidence, and self-consistency confidences are
    discrete, so ties are the normal case (pooling them one by one, sorted wrong before
    right, made a rising step inside a tie)."""
    if len(confidence) != len(correct):
        raise ValueError("confidence and correct differ in length")
    if not confidence:
        raise ValueError("no items to fit a calibration on")
    ties: dict[float, list[float]] = {}
    for x, y in zip(confidence, correct, strict=True):
        tie = ties.setdefault(float(x), [0.0, 0.0, 0.0])
        tie[0] += x
        tie[1] += float(y)
        tie[2] += 1.0
    # Each block: [sum_x, sum_y, count]; merged only when it breaks the order (strictly
    # less accurate than the block before), so monotone data keep one point per confidence.
    blocks: list[list[float]] = []
    for _, tie in sorted(ties.items()):
        blocks.append(tie)
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            sx, sy, n = blocks.pop()
            blocks[-1][0] += sx
            blocks[-1][1] += sy
            blocks[-1][2] += n
    points = [[round(sx / n, 6), round(sy / n, 6)] for sx, sy, n in blocks]
    return {"points": points, "counts": [int(n) for _, _, n in blocks]}


def apply_isotonic(parameters: dict[str, Any], raw: float) -> float:
    """Linear between the block points, flat beyond the first and last."""
    points = parameters["points"]
    xs = [p[0] for p in points]
    if raw <= xs[0]:
        return points[0][1]
    if raw >= xs[-1]:
        return points[-1][1]
    i = bisect_right(xs, raw)
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    if x1 == x0:
        return y1
    return y0 + (y1 - y0) * (raw - x0) / (x1 - x0)


def _logit(p: float) -> float:
    p = min(1 - _EPS, max(_EPS, p))
    return math.log(p / (1 - p))


def _sigmoid(t: float) -> float:
    """1 / (1 + exp(-t)) without overflow for large |t| (logit(0) is about -13.8)."""
    if t >= 0:
        return 1 / (1 + math.exp(-t))
    e = math.exp(t)
    return e / (1 + e)


def fit_platt(confidence: Sequence[float], correct: Sequence[bool]) -> dict[str, Any]:
    """Logistic regression of correctness on logit(raw): p = 1 / (1 + exp(-(a·z + b))).

    Newton's method with Platt's smoothed targets, so a report where every item was right
    (or wrong) still gives finite parameters."""
    zs = [_logit(c) for c in confidence]
    positives = sum(1 for y in correct if y)
    negatives = len(correct) - positives
    if not zs:
        raise ValueError("no items to fit a calibration on")
    hi, lo = (positives + 1) / (positives + 2), 1 / (negatives + 2)
    targets = [hi if y else lo for y in correct]
    a, b = 1.0, 0.0
    for _ in range(100):
        g_a = g_b = h_aa = h_ab = h_bb = 0.0
        for z, t in zip(zs, targets, strict=True):
            p = _sigmoid(a * z + b)
            w = max(p * (1 - p), 1e-12)
            g_a += (p - t) * z
            g_b += p - t
            h_aa += w * z * z
            h_ab += w * z
            h_bb += w
        h_aa += 1e-9  # keeps the step defined when every z is equal
        h_bb += 1e-9
        det = h_aa * h_bb - h_ab * h_ab
        if abs(det) < 1e-15:
            break
        step_a = (h_bb * g_a - h_ab * g_b) / det
        step_b = (h_aa * g_b - h_ab * g_a) / det
        # Backtracking (Lin, Lin & Weng 2007): a full Newton step can overshoot far from the
        # optimum (logit(0) is about -13.8) and run off to absurd parameters.
        loss, scale = _platt_loss(zs, targets, a, b), 1.0
        while scale > 1e-10 and _platt_loss(
            zs, targets, a - scale * step_a, b - scale * step_b
        ) > loss + 1e-4 * scale * (g_a * -step_a + g_b * -step_b):
            scale /= 2
        a, b = a - scale * step_a, b - scale * step_b
        if abs(scale * step_a) < 1e-9 and abs(scale * step_b) < 1e-9:
            break
    return {"a": round(a, 6), "b": round(b, 6)}


def _platt_loss(zs: Sequence[float], targets: Sequence[float], a: float, b: float) -> float:
    """Cross-entropy of the smoothed targets, computed without overflow."""
    total = 0.0
    for z, t in zip(zs, targets, strict=True):
        f = a * z + b
        # -(t·log s(f) + (1-t)·log(1-s(f))) = log(1 + e^f) - t·f, s the sigmoid
        total += (f if f > 0 else 0.0) + math.log1p(math.exp(-abs(f))) - t * f
    return total


def apply_platt(parameters: dict[str, Any], raw: float) -> float:
    return _sigmoid(parameters["a"] * _logit(raw) + parameters["b"])


FITTERS = {ISOTONIC: fit_isotonic, PLATT: fit_platt}
APPLIERS = {ISOTONIC: apply_isotonic, PLATT: apply_platt}


def fit(method: str, confidence: Sequence[float], correct: Sequence[bool]) -> dict[str, Any]:
    if method not in FITTERS:
        raise ValueError(f"unknown calibration method {method!r}; expected one of {list(FITTERS)}")
    return FITTERS[method](confidence, correct)


def apply(method: str, parameters: dict[str, Any], raw: float) -> float:
    return round(min(1.0, max(0.0, APPLIERS[method](parameters, raw))), 4)

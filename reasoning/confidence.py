"""Confidence from self-consistency: how many of the requested samples reached the same
top diagnosis (compared by ICD-10-CM category when coded, else by normalised text; the
share agreeing on the exact code is kept beside it), weighted with the token probability
of the answers (where the server returns log-probabilities) and, as a minor part only,
the model's stated confidence.

Samples that failed count against agreement: three samples with one usable answer are
not "100% agreement".

The bands that put a confidence into words live here too, so the clinician's page, the
auditor's filters and their tests agree on what "high" means.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from reasoning import gate
from reasoning.parsing import Sample

METHOD = "self-consistency.v2"  # v2: top diagnoses compared by code, after the gate
# Weights of the components; the stated confidence is the least trusted.
WEIGHTS_WITH_LOGPROBS = {"agreement": 0.6, "token_probability": 0.25, "stated": 0.15}
WEIGHTS_WITHOUT_LOGPROBS = {"agreement": 0.8, "stated": 0.2}


class Band(StrEnum):
    """A confidence in plain words."""

    HIGH = "high"
    MODERATE = "moderate"
    LOW = "low"


# Lower bound of each band, highest first: a confidence is in the first band it reaches.
BAND_FLOORS: tuple[tuple[float, Band], ...] = (
    (0.75, Band.HIGH),
    (0.5, Band.MODERATE),
    (0.0, Band.LOW),
)


def band_of(value: float | None) -> Band | None:
    """The band of a confidence; None when there is no confidence."""
    if value is None:
        return None
    for floor, band in BAND_FLOORS:
        if value >= floor:
            return band
    return BAND_FLOORS[-1][1]


def band_range(band: Band) -> tuple[float | None, float | None]:
    """``[floor, ceiling)`` of a band, None where it is open (the highest band has no
    ceiling, the lowest no floor), so a filter selects exactly what ``band_of`` names."""
    index = [b for _, b in BAND_FLOORS].index(band)
    floor = BAND_FLOORS[index][0] if index < len(BAND_FLOORS) - 1 else None
    ceiling = BAND_FLOORS[index - 1][0] if index > 0 else None
    return floor, ceiling


# Fold case, punctuation and hedging words so 'Acute MI.' and 'acute mi' agree.
normalise_diagnosis = gate.normalise


@dataclass(frozen=True)
class Confidence:
    value: float
    method: str
    components: dict[str, Any]
    chosen_index: int
    top_diagnosis: str


def combine(samples: list[Sample], *, requested: int) -> Confidence | None:
    """None when no sample is usable."""
    usable = [s for s in samples if s.assessment is not None]
    if not usable:
        return None
    keys = [s.top_key for s in usable]
    counts = Counter(broad for _, broad in keys)
    modal, votes = counts.most_common(1)[0]
    agreeing = [s for s, (_, broad) in zip(usable, keys, strict=True) if broad == modal]
    exact_counts = Counter(s.top_key[0] for s in agreeing)
    exact, exact_votes = exact_counts.most_common(1)[0]
    agreeing.sort(key=lambda s: s.top_key[0] != exact)  # stable: the modal exact code first
    agreement = votes / max(requested, len(samples))
    stated = sum(s.assessment.stated_confidence for s in agreeing) / len(agreeing)
    logprobs = [s.mean_logprob for s in agreeing if s.mean_logprob is not None]
    token_probability = math.exp(sum(logprobs) / len(logprobs)) if logprobs else None

    components: dict[str, Any] = {
        "agreement": round(agreement, 4),
        "agreeing_samples": votes,
        "usable_samples": len(usable),
        "requested_samples": requested,
        "distinct_top_diagnoses": len(counts),
        "compared_by": modal.split(":", 1)[0],
        "exact_agreement": round(exact_votes / max(requested, len(samples)), 4),
        "stated": round(stated, 4),
        "token_probability": None if token_probability is None else round(token_probability, 4),
    }
    if token_probability is not None:
        weights = WEIGHTS_WITH_LOGPROBS
        value = (
            weights["agreement"] * agreement
            + weights["token_probability"] * token_probability
            + weights["stated"] * stated
        )
    else:
        weights = WEIGHTS_WITHOUT_LOGPROBS
        value = weights["agreement"] * agreement + weights["stated"] * stated
    components["weights"] = weights
    chosen = agreeing[0]
    return Confidence(
        value=round(min(1.0, max(0.0, value)), 4),
        method=METHOD,
        components=components,
        chosen_index=chosen.index,
        top_diagnosis=chosen.top_answer or "",
    )

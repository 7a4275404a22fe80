"""Confidence from self-consistency: how many of the requested samples reached the same
top diagnosis, weighted with the token probability of the answers (where the server
returns log-probabilities) and, as a minor part only, the model's stated confidence.

Samples that failed count against agreement: three samples with one usable answer are
not "100% agreement".
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from reasoning.parsing import Sample

METHOD = "self-consistency.v1"
# Weights of the components; the stated confidence is the least trusted.
WEIGHTS_WITH_LOGPROBS = {"agreement": 0.6, "token_probability": 0.25, "stated": 0.15}
WEIGHTS_WITHOUT_LOGPROBS = {"agreement": 0.8, "stated": 0.2}

_ARTICLES = re.compile(r"^(?:an?|the|acute|likely|probable|possible|suspected)\s+")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_diagnosis(name: str) -> str:
    """Fold case, punctuation and hedging words so 'Acute MI.' and 'acute mi' agree."""
    text = _NON_WORD.sub(" ", name.lower()).strip()
    previous = None
    while previous != text:
        previous = text
        text = _ARTICLES.sub("", text)
    return text


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
    tops = [normalise_diagnosis(s.top_answer or "") for s in usable]
    counts = Counter(tops)
    modal, votes = counts.most_common(1)[0]
    agreeing = [s for s, top in zip(usable, tops, strict=True) if top == modal]
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

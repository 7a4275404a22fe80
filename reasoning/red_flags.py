"""Which of the model's red flags can be taken as one: not junk (punctuation, a boolean, a
likelihood word, an identifier), and each said once. The early-warning safety net and the
CDS Hooks card's criticality ask this before they let a red flag count.

A floor, not the answer gate: the gate (issue 15 item 2) also drops flags with no verified
cited fact; once it runs, callers pass its verified flags through this unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Words a model writes in a red flag's place when it has not understood the field.
_NOT_A_FLAG = frozenset(
    {
        *("true", "false", "yes", "no", "none", "null", "nil", "na", "n a", "unknown"),
        *("high", "moderate", "medium", "low", "very high", "very low", "likely"),
        *("unlikely", "possible", "probable", "red flag", "red flags", "flag", "add"),
    }
)
# An identifier, not words: "mildred-9-19-20-11-20", "x_12", "ab12cd".
_IDENTIFIER = re.compile(r"^[a-z]*(?:[-_]?\d+)+[a-z]*(?:[-_]\d+)*$")


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def is_junk(text: str) -> bool:
    """A red flag's text that says nothing clinical."""
    words = _normalised(text)
    letters = re.sub(r"[^a-z]", "", words)
    return (
        len(letters) < 2
        or words in _NOT_A_FLAG
        or bool(_IDENTIFIER.fullmatch(words.replace(" ", "-")))
    )


def credible_red_flags(flags: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The flags that are not junk, each once (by their normalised text), in order."""
    seen: set[str] = set()
    kept = []
    for flag in flags:
        text = str(flag.get("flag") or "")
        key = _normalised(text)
        if is_junk(text) or key in seen:
            continue
        seen.add(key)
        kept.append(flag)
    return kept

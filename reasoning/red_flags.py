"""Which of the model's red flags can be taken as one: not junk (punctuation, a boolean, a
likelihood word, an identifier), and each said once. The early-warning safety net and the
CDS Hooks card's criticality ask this before they let a red flag count.

The answer gate (``reasoning.gate``) already dropped junk and unsupported flags from every
answer checked since it ran; this screens answers stored before it, by the gate's rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from reasoning.gate import junk_reason


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def is_junk(text: str) -> bool:
    """A red flag's text that says nothing clinical, by the answer gate's own rule."""
    return bool(junk_reason(text, kind="red flag"))


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

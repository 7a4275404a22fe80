"""The override reason vocabulary: HL7's CDS Hooks non-adherence reason codes."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

REASON_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
_CODE_SYSTEM_FILE = (
    Path(__file__).parent / "vocabulary" / "CodeSystem-non-adherence-reason-codes.json"
)


@cache
def reason_codes() -> dict[str, str]:
    """Every code (categories and their children) → its display text, in the file's order."""
    concepts = json.loads(_CODE_SYSTEM_FILE.read_text())["concept"]
    codes: dict[str, str] = {}

    def walk(items: list[dict]) -> None:
        for item in items:
            codes[item["code"]] = item["display"]
            walk(item.get("concept", []))

    walk(concepts)
    return codes


def reason_display(code: str) -> str:
    return reason_codes().get(code, code)

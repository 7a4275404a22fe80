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


# What a clinician at the bedside would call each reason; the HL7 code (and its display)
# stays what is stored and sent to CDS Hooks. Categories first, then their reasons.
PLAIN_LABELS: dict[str, str] = {
    "cds-not-applicable": "Does not apply to this patient",
    "patient-ineligible": "Patient not eligible for it",
    "indication-order-exists": "Already ordered or indicated",
    "action-completed": "Already done",
    "action-unsuccessful": "Tried before without success",
    "action-performed-no-adverse-effect": "Done before without harm",
    "action-not-priority": "Not a priority now",
    "cds-suboptimal-context": "Wrong time, place or person",
    "limited-time": "No time to act on it now",
    "wrong-time-workflow": "Wrong moment in the patient's care",
    "inappropriate-recipient": "Meant for someone else",
    "need-more-info": "Need more information or pending results",
    "recipient-disagrees-evidence": "I disagree with the evidence",
    "does-not-align-latest-evidence": "Not in line with current evidence",
    "expert-contradicts": "A specialist advised otherwise",
    "policy-contradicts": "Our guideline or policy says otherwise",
    "recipient-does-not-trust": "I do not trust this advice",
    "recipient-concerns-outcomes": "Concern about the outcome for the patient",
    "risk-benefit-ratio": "Risks outweigh the benefits",
    "mitigate-risk-negative-outcome": "Acting to prevent a bad outcome",
    "likely-negative-health-outcomes": "Likely to harm the patient",
    "patient-contraindication": "Contraindicated in this patient",
    "does-not-align-preferences": "Against the patient's wishes",
    "patient-fears-discomfort": "Patient fears the discomfort",
    "patient-does-not-want-change": "Patient does not want to change",
    "cultural-religious-reason": "Cultural or religious reason",
    "prefers-alternative": "Patient prefers another option",
    "patient-refuses": "Patient declines",
    "not-convenient-feasible": "Not practical or feasible",
    "inadequate-support": "Not enough support at home",
    "service-not-available": "Treatment or service not available here",
    "implementation-challenges": "Cannot be done with the systems we have",
    "too-costly-uncovered": "Too costly or not covered",
    "recipient-does-not-understand": "Unclear what is advised or how to do it",
    "comorbidity-disability": "Another condition or disability prevents it",
}


def plain_label(code: str) -> str:
    return PLAIN_LABELS.get(code) or reason_display(code)


@cache
def reason_groups() -> list[tuple[str, list[tuple[str, str]]]]:
    """The codes as a clinician chooses them: each category (plain label) with its own
    code first ("…, in general") and then its reasons, in the code system's order."""
    concepts = json.loads(_CODE_SYSTEM_FILE.read_text())["concept"]
    return [
        (
            plain_label(category["code"]),
            [(category["code"], f"{plain_label(category['code'])}, in general")]
            + [
                (child["code"], plain_label(child["code"])) for child in category.get("concept", ())
            ],
        )
        for category in concepts
    ]

"""The cards a hook call answers with: the assessment, or where the case stands; their ids
are stable for a case, hook instance and kind."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings

from clinical.ehr.cds_hooks.schemas import SUMMARY_MAX
from clinical.models import Case, CaseStatus
from clinical.reasons import REASON_CODE_SYSTEM, reason_display
from reasoning.schemas import CheckedAssessment

CARD_NAMESPACE = uuid.UUID("6f1d8c52-3a57-4a3e-9d0e-1c3b2f5a7e90")
# The override reasons a card offers: the non-adherence codes that fit a model's answer.
OVERRIDE_REASON_CODES = (
    "cds-not-applicable",
    "patient-ineligible",
    "need-more-info",
    "recipient-disagrees-evidence",
    "does-not-align-latest-evidence",
    "patient-contraindication",
    "action-completed",
    "prefers-alternative",
)


def card_uuid(case: Case, hook_instance: str, kind: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{case.id}:{hook_instance}:{kind}"))


def _override_reasons() -> list[dict[str, str]]:
    return [
        {"system": REASON_CODE_SYSTEM, "code": code, "display": reason_display(code)}
        for code in OVERRIDE_REASON_CODES
    ]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def assessment_card(case: Case, run: Any, link: str, uuid_: str) -> dict[str, Any]:
    # The checked answer: every red flag here rests on a verified case fact.
    checked = CheckedAssessment.stored(run.assessment)
    assessment = checked.model_dump(mode="json") if checked else {}
    differential = assessment.get("differential") or []
    red_flags = assessment.get("red_flags") or []
    steps = assessment.get("next_steps") or []
    confidence = run.confidence
    top = differential[0] if differential else {}
    confidence_text = f"confidence {confidence:.2f}" if confidence is not None else "confidence ?"
    summary = f"{top.get('diagnosis', 'Assessment ready')}"
    if top.get("likelihood"):
        summary += f" ({top['likelihood']} likelihood)"
    summary = _shorten(f"Bedside: {summary}, {confidence_text}", SUMMARY_MAX)
    if red_flags:
        indicator = "critical"
    elif confidence is None or confidence < settings.BEDSIDE_CDS_LOW_CONFIDENCE:
        indicator = "warning"
    else:
        indicator = "info"
    lines = ["**Differential**", ""]
    for i, d in enumerate(differential, 1):
        facts = "; ".join(f["text"] for f in d.get("supporting_facts") or [])
        code = f" [ICD-10-CM {d['coding']['code']}]" if d.get("coding") else ""
        lines.append(
            f"{i}. {d.get('diagnosis')}{code} ({d.get('likelihood')}): {facts}".rstrip(": ")
        )
    if steps:
        lines += ["", "**Next steps**", ""]
        lines += [f"- {s.get('action')}" for s in steps]
    if red_flags:
        lines += ["", "**Red flags**", ""]
        lines += [f"- {f.get('flag')}" for f in red_flags]
    method = run.confidence_method or "unknown method"
    lines += [
        "",
        f"Confidence {confidence_text.split(' ', 1)[1]} ({method}). Decision support from "
        f"{run.model_name}: a clinician decides.",
    ]
    return {
        "uuid": uuid_,
        "summary": summary,
        "detail": "\n".join(lines),
        "indicator": indicator,
        "source": {
            "label": _shorten(
                f"Bedside · {run.model_name} ({settings.BEDSIDE_MODEL_VALIDATION_LABEL})", 200
            ),
            "url": link,
        },
        "overrideReasons": _override_reasons(),
        "links": [{"label": "Open the case in Bedside", "url": link, "type": "absolute"}],
    }


def status_card(case: Case, link: str, uuid_: str) -> dict[str, Any]:
    if case.status == CaseStatus.FAILED:
        summary, indicator = "Bedside could not complete its assessment", "warning"
    else:
        summary, indicator = "Bedside assessment running; reopen the chart for the result", "info"
    return {
        "uuid": uuid_,
        "summary": summary,
        "indicator": indicator,
        "source": {"label": "Bedside", "url": link},
        "links": [{"label": "Follow the case in Bedside", "url": link, "type": "absolute"}],
    }

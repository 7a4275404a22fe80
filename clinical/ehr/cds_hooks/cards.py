"""The cards a hook call answers with: the assessment, or where the case stands; their ids
are stable for a case, hook instance and kind."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from django.conf import settings

from clinical.ehr.cds_hooks.schemas import SUMMARY_MAX
from clinical.models import Case, CaseStatus
from clinical.reasons import REASON_CODE_SYSTEM, reason_display
from reasoning import early_warning as ew
from reasoning.red_flags import credible_red_flags
from reasoning.schemas import CheckedAssessment

Indicator = Literal["info", "warning", "critical"]

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


# Every ASCII punctuation character: CommonMark lets a backslash make any of them literal.
_MARKDOWN_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")


def markdown_text(value: object) -> str:
    """Text from outside Bedside (the model's answer, the case's facts) as Markdown that
    renders as exactly those words on one line: white space folded (no new paragraph,
    heading or list), every punctuation character escaped, so no image (which the EHR would
    fetch, with whatever the model put in its address), no link, no raw HTML, no entity
    and no bare address a GitHub-flavoured renderer would make a link of. The card's only
    links are Bedside's own, which it adds itself."""
    text = " ".join(str(value).split())
    return _MARKDOWN_PUNCTUATION.sub(lambda found: "\\" + found.group(), text)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_indicator(
    scores: Sequence[Mapping[str, Any]],
    red_flags: Sequence[Mapping[str, Any]],
    *,
    otherwise: Indicator = "info",
) -> Indicator:
    """``critical`` only when something backs it: a high early-warning score (``alert``) or
    a red flag that is not junk (a boolean, a likelihood word, punctuation). Otherwise the
    card's own level (``warning`` for a low confidence or a failed assessment).

    ``red_flags`` are today's answer's flags, screened here; once the answer gate runs,
    callers pass its verified flags and the screen lets them through unchanged."""
    if ew.alert(scores) or credible_red_flags(red_flags):
        return "critical"
    return otherwise


def _early_warning_lines(scores: Sequence[Mapping[str, Any]], not_scored: list[str]) -> list[str]:
    lines = ["**Early-warning scores** (computed by Bedside from the vital signs, no model)", ""]
    for score in scores:
        not_recorded = [m["label"] for m in score["missing"] if m["assumed"] is None]
        text = f"- {score['name']} {score['score']} ({score['risk']} risk)"
        if not_recorded:
            text += f"; partial, not recorded: {', '.join(not_recorded)}"
        lines.append(text)
    lines += [f"- {reason[:1].upper()}{reason[1:]}" for reason in not_scored]
    return lines


def _alert_text(scores: Sequence[Mapping[str, Any]], answer_flags: bool, answered: bool) -> str:
    """The plain warning when a score is high and nothing from the model says so."""
    if not ew.alert(scores) or answer_flags:
        return ""
    headline = ew.alert_headline(scores)
    if answered:
        return f"{headline}: the model's answer raises no red flag. Assess the patient now."
    return f"{headline}: no answer from the model yet. Assess the patient now."


def assessment_card(case: Case, run: Any, link: str, uuid_: str) -> dict[str, Any]:
    # The checked answer: every red flag here rests on a verified case fact.
    checked = CheckedAssessment.stored(run.assessment)
    assessment = checked.model_dump(mode="json") if checked else {}
    differential = assessment.get("differential") or []
    red_flags = credible_red_flags(assessment.get("red_flags") or [])
    steps = assessment.get("next_steps") or []
    warning = ew.early_warning(case.input)
    scores = warning["scores"]
    confidence = run.confidence
    top = differential[0] if differential else {}
    confidence_text = f"confidence {confidence:.2f}" if confidence is not None else "confidence ?"
    alert_text = _alert_text(scores, bool(red_flags), answered=True)
    if alert_text:
        summary = _shorten(f"Bedside: {alert_text}", SUMMARY_MAX)
    else:
        summary = f"{top.get('diagnosis', 'Assessment ready')}"
        if top.get("likelihood"):
            summary += f" ({top['likelihood']} likelihood)"
        if ew.alert(scores):
            summary = f"{ew.alert_headline(scores)}; {summary}"
        summary = _shorten(f"Bedside: {summary}, {confidence_text}", SUMMARY_MAX)
    low_confidence = confidence is None or confidence < settings.BEDSIDE_CDS_LOW_CONFIDENCE
    indicator = card_indicator(scores, red_flags, otherwise="warning" if low_confidence else "info")
    lines = [alert_text, ""] if alert_text else []
    lines += [*_early_warning_lines(scores, warning["not_scored"]), ""]
    lines += ["**Differential**", ""]
    # Everything the model wrote, and the case's own facts, go in through markdown_text.
    md = markdown_text
    for i, d in enumerate(differential, 1):
        facts = "; ".join(md(f["text"]) for f in d.get("supporting_facts") or [])
        code = f" \\[ICD-10-CM {md(d['coding']['code'])}\\]" if d.get("coding") else ""
        lines.append(
            f"{i}. {md(d.get('diagnosis'))}{code} ({md(d.get('likelihood'))}): {facts}".rstrip(": ")
        )
    if steps:
        lines += ["", "**Next steps**", ""]
        lines += [f"- {md(s.get('action'))}" for s in steps]
    if red_flags:
        lines += ["", "**Red flags**", ""]
        lines += [f"- {md(f.get('flag'))}" for f in red_flags]
    method = md(run.confidence_method or "unknown method")
    lines += [
        "",
        f"Confidence {confidence_text.split(' ', 1)[1]} ({method}). Decision support from "
        f"{md(run.model_name)}: a clinician decides.",
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
    warning = ew.early_warning(case.input)
    scores = warning["scores"]
    failed = case.status == CaseStatus.FAILED
    if failed:
        summary = "Bedside could not complete its assessment"
    else:
        summary = "Bedside assessment running; reopen the chart for the result"
    alert_text = ""
    if ew.alert(scores):
        headline = ew.alert_headline(scores)
        alert_text = (
            f"{headline}, and the model gave no answer. Assess the patient now."
            if failed
            else _alert_text(scores, False, answered=False)
        )
        summary = _shorten(f"Bedside: {alert_text}", SUMMARY_MAX)
    lines = [alert_text, ""] if alert_text else []
    lines += _early_warning_lines(scores, warning["not_scored"])
    return {
        "uuid": uuid_,
        "summary": summary,
        "detail": "\n".join(lines),
        "indicator": card_indicator(scores, [], otherwise="warning" if failed else "info"),
        "source": {"label": "Bedside", "url": link},
        "links": [{"label": "Follow the case in Bedside", "url": link, "type": "absolute"}],
    }

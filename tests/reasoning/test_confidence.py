"""Confidence comes from the samples: agreement moves it, failures count against it."""

from __future__ import annotations

import json

from reasoning.confidence import combine, normalise_diagnosis
from reasoning.parsing import parse_choice
from reasoning.protocol import Choice
from tests.fakes import assessment, choice


def samples(tops: list[str | None], *, stated: float = 0.7, logprobs: list[float] | None = None):  # type: ignore[no-untyped-def]
    out = []
    for i, top in enumerate(tops):
        content = json.dumps(assessment(top, confidence=stated)) if top else "not json"
        out.append(parse_choice(Choice.model_validate(choice(i, content, logprobs=logprobs))))
    return out


def test_normalisation_folds_case_punctuation_and_hedges() -> None:
    assert normalise_diagnosis("Acute Myocardial Infarction.") == normalise_diagnosis(
        "myocardial infarction"
    )
    assert normalise_diagnosis("Likely the pneumonia") == "pneumonia"


def test_agreeing_samples_score_higher_than_disagreeing() -> None:
    agree = combine(samples(["MI", "mi", "Acute MI"]), requested=3)
    split = combine(samples(["MI", "Pneumonia", "Pulmonary embolism"]), requested=3)
    assert agree is not None and split is not None
    assert agree.components["agreement"] == 1.0
    assert split.components["agreement"] == round(1 / 3, 4)
    assert agree.value > split.value
    assert agree.method == "self-consistency.v2"


def test_failed_samples_count_against_agreement() -> None:
    result = combine(samples(["MI", None, None]), requested=3)
    assert result is not None
    assert result.components["usable_samples"] == 1
    assert result.components["agreement"] == round(1 / 3, 4)


def test_no_usable_sample_gives_no_confidence() -> None:
    assert combine(samples([None, None]), requested=2) is None


def test_token_probability_is_a_component_when_present() -> None:
    sure = combine(samples(["MI", "MI"], logprobs=[-0.01]), requested=2)
    unsure = combine(samples(["MI", "MI"], logprobs=[-2.0]), requested=2)
    assert sure is not None and unsure is not None
    assert sure.components["token_probability"] > unsure.components["token_probability"]
    assert sure.value > unsure.value


def test_stated_confidence_is_only_a_minor_component() -> None:
    bold = combine(samples(["MI", "Pneumonia", "PE"], stated=1.0), requested=3)
    modest = combine(samples(["MI", "MI", "MI"], stated=0.2), requested=3)
    assert bold is not None and modest is not None
    assert modest.value > bold.value

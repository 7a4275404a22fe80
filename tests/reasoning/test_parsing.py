"""Trace extraction and answer checking, on recorded response shapes of each kind of server."""

from __future__ import annotations

import json

from reasoning.parsing import TraceSource, parse_choice
from reasoning.protocol import Choice
from tests.fakes import assessment, choice

ANSWER = json.dumps(
    assessment("Acute coronary syndrome", steps=["Chest pain with raised troponin."])
)


def parse(raw: dict) -> object:  # type: ignore[type-arg]
    return parse_choice(Choice.model_validate(raw))


def test_vllm_reasoning_parser_field_wins() -> None:
    sample = parse(
        choice(0, ANSWER, reasoning="Troponin is up, so ACS.", reasoning_content="older")
    )
    assert sample.trace_source == TraceSource.REASONING
    assert sample.trace == "Troponin is up, so ACS."
    assert sample.assessment is not None


def test_older_vllm_reasoning_content() -> None:
    sample = parse(choice(0, ANSWER, reasoning_content="Pain radiating to the arm."))
    assert sample.trace_source == TraceSource.REASONING_CONTENT
    assert sample.trace == "Pain radiating to the arm."


def test_think_tags_in_content() -> None:
    sample = parse(choice(0, f"<think>\nST changes likely.\n</think>\n\n{ANSWER}"))
    assert sample.trace_source == TraceSource.THINK_TAGS
    assert sample.trace == "ST changes likely."
    assert sample.assessment is not None
    assert sample.assessment.differential[0].diagnosis == "Acute coronary syndrome"


def test_think_block_opened_by_the_chat_template() -> None:
    sample = parse(choice(0, f"The template opened the block.\n</think>\n{ANSWER}"))
    assert sample.trace_source == TraceSource.THINK_TAGS
    assert sample.trace == "The template opened the block."
    assert sample.assessment is not None


def test_structured_steps_when_the_server_gives_no_trace() -> None:
    sample = parse(choice(0, ANSWER))
    assert sample.trace_source == TraceSource.ANSWER_STEPS
    assert sample.trace == "1. Chest pain with raised troponin."


def test_truncated_sample_is_a_recorded_failure() -> None:
    sample = parse(choice(0, ANSWER[:80], finish_reason="length"))
    assert sample.assessment is None
    assert "finish_reason=length" in sample.error


def test_invalid_json_is_a_recorded_failure() -> None:
    sample = parse(choice(0, '{"differential": [}'))
    assert sample.assessment is None
    assert sample.error.startswith("invalid JSON")
    assert sample.trace_source == TraceSource.NONE


def test_empty_differential_fails_the_schema() -> None:
    bad = assessment("x")
    bad["differential"] = []
    sample = parse(choice(0, json.dumps(bad)))
    assert sample.assessment is None
    assert "differential" in sample.error


def test_unclosed_think_block_is_truncation_with_trace_kept() -> None:
    sample = parse(choice(0, "<think>still thinking about", finish_reason="length"))
    assert sample.assessment is None
    assert sample.trace == "still thinking about"
    assert sample.trace_source == TraceSource.THINK_TAGS


def test_logprobs_are_averaged() -> None:
    sample = parse(choice(0, ANSWER, logprobs=[-0.1, -0.3]))
    assert sample.mean_logprob is not None
    assert abs(sample.mean_logprob + 0.2) < 1e-9

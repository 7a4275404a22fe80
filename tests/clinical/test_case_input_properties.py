"""Property tests: whatever arrives, `CaseInput` answers with a validation error or a valid
case, never another exception; every valid case renders into a prompt; the API never
answers a malformed case with a 5xx."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clinical.schemas import CaseInput
from reasoning import prompts
from reasoning.facts import case_facts, phrases
from tests.conftest import client_for
from tests.factories import load_case

# Hundreds of generated cases per property: kept out of make test-fast.
pytestmark = pytest.mark.slow

BASE = load_case()

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)

# Paths into the valid case where a hostile value may be put.
PATHS = [
    ("patient",),
    ("patient", "age_years"),
    ("patient", "sex"),
    ("patient", "pregnant"),
    ("vitals",),
    ("vitals", "heart_rate"),
    ("vitals", "temperature_c"),
    ("vitals", "diastolic_bp"),
    ("labs",),
    ("labs", 0, "value"),
    ("labs", 0, "unit"),
    ("labs", 0, "loinc"),
    ("medications", 0),
    ("allergies", 0, "severity"),
    ("chief_complaint",),
    ("question",),
    ("priority",),
    ("setting",),
    ("past_medical_history",),
    ("surprise",),
]


def mutated(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    case = copy.deepcopy(BASE)
    node: Any = case
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return case


@given(st.sampled_from(PATHS), json_values)
@settings(max_examples=300, deadline=None)
def test_any_value_anywhere_is_valid_or_a_validation_error(path: tuple, value: Any) -> None:  # type: ignore[type-arg]
    try:
        case = CaseInput.model_validate(mutated(path, value))
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            assert isinstance(error["loc"], tuple)
            assert error["msg"]
        return
    # Valid: it must survive its own round trip and render into a prompt.
    dumped = case.model_dump(mode="json")
    assert CaseInput.model_validate(dumped) == case
    assert prompts.render(dumped).text
    case_facts(dumped)


@given(json_values)
@settings(max_examples=200, deadline=None)
def test_any_json_document_is_valid_or_a_validation_error(document: Any) -> None:
    try:
        case = CaseInput.model_validate(document)
    except ValidationError as exc:
        assert exc.error_count() > 0
    else:
        assert case.chief_complaint.strip() and case.question.strip()


valid_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=80
).filter(lambda s: s.strip())


@given(
    age=st.integers(min_value=0, max_value=130),
    sex=st.sampled_from(["male", "female", "other", "unknown"]),
    complaint=valid_text,
    question=valid_text,
    heart_rate=st.none() | st.integers(min_value=20, max_value=300),
    temperature=st.none() | st.floats(min_value=25, max_value=45),
    history=st.lists(valid_text, max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_every_valid_case_renders_into_a_prompt_with_its_facts(**fields: Any) -> None:
    document = {
        "patient": {"age_years": fields["age"], "sex": fields["sex"]},
        "chief_complaint": fields["complaint"],
        "question": fields["question"],
        "past_medical_history": fields["history"],
        "vitals": {"heart_rate": fields["heart_rate"], "temperature_c": fields["temperature"]},
    }
    case = CaseInput.model_validate(document).model_dump(mode="json")
    prompt = prompts.render(case)
    # The complaint reaches the model phrase by phrase, each a fact it can cite.
    complaint = phrases(case["chief_complaint"])
    assert complaint and all(p in prompt.text for p in complaint)
    for fact in case_facts(case):
        assert f"[{fact.id}] {fact.text}" in prompt.text
    assert len(prompt.sha256) == 64


@pytest.mark.django_db
@given(st.sampled_from(PATHS), json_values)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_answers_a_hostile_case_with_400_or_202_never_5xx(
    alice: User,
    path: tuple,
    value: Any,  # type: ignore[type-arg]
) -> None:
    body = json.dumps(mutated(path, value), allow_nan=True)
    response = client_for(alice).post("/api/v1/cases/", data=body, content_type="application/json")
    assert response.status_code in (202, 400), response.content[:300]
    if response.status_code == 400:
        assert response.json()["errors"]

"""CaseInput: what is accepted, and that each refusal names the field and the reason."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from clinical.schemas import CaseInput
from tests.factories import load_case


def errors_for(data: dict[str, Any]) -> dict[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as info:
        CaseInput.model_validate(data)
    return {tuple(e["loc"]): e["msg"] for e in info.value.errors()}


def test_design_example_case_is_accepted_with_units_kept() -> None:
    case = CaseInput.model_validate(load_case())
    assert case.patient.age_years == 64
    assert case.vitals is not None and case.vitals.temperature_c == 37.1
    assert case.labs[0].unit == "ng/mL"


def test_only_patient_complaint_and_question_are_required() -> None:
    case = CaseInput.model_validate(
        {
            "patient": {"age_years": 30, "sex": "female"},
            "chief_complaint": "cough",
            "question": "why?",
        }
    )
    assert case.priority == "routine"
    assert case.medications == []


def test_missing_required_fields_are_named() -> None:
    errors = errors_for({"patient": {"age_years": 30}})
    assert ("chief_complaint",) in errors
    assert ("question",) in errors
    assert ("patient", "sex") in errors


def test_unknown_fields_are_rejected() -> None:
    data = load_case() | {"favourite_colour": "blue"}
    assert errors_for(data)[("favourite_colour",)] == "Extra inputs are not permitted"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature_c", 98.6),  # Fahrenheit sent as Celsius
        ("heart_rate", 0),
        ("spo2", 101),
        ("respiratory_rate", 200),
        ("weight_kg", -3),
    ],
)
def test_impossible_vitals_are_refused(field: str, value: float) -> None:
    data = load_case()
    data["vitals"][field] = value
    assert ("vitals", field) in errors_for(data)


def test_diastolic_must_be_below_systolic() -> None:
    data = load_case()
    data["vitals"]["diastolic_bp"] = 160
    assert "diastolic_bp must be lower" in errors_for(data)[("vitals",)]


def test_pregnant_male_is_refused() -> None:
    data = load_case()
    data["patient"]["pregnant"] = True
    assert "pregnant is true but sex is male" in errors_for(data)[("patient",)]


def test_numeric_lab_needs_unit_and_loinc_has_its_shape() -> None:
    data = load_case()
    data["labs"] = [
        {"name": "Sodium", "value": 140},
        {"name": "K", "loinc": "abc", "value": 4, "unit": "mmol/L"},
    ]
    errors = errors_for(data)
    assert "needs its unit" in errors[("labs", 0)]
    assert ("labs", 1, "loinc") in errors


def test_wrong_types_are_refused() -> None:
    data = load_case()
    data["patient"]["age_years"] = "sixty-four"
    data["medications"] = "metformin"
    errors = errors_for(data)
    assert ("patient", "age_years") in errors
    assert ("medications",) in errors


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_even_where_no_bound_applies(value: float) -> None:
    data = load_case()
    data["labs"][0]["value"] = value  # a lab value has no physiological bound
    errors = errors_for(data)
    assert errors[("labs", 0, "value", "float")] == "Input should be a finite number"

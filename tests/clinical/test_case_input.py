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


def test_bp_with_diastolic_above_systolic_is_refused_at_the_diastolic_field() -> None:
    data = load_case()
    data["vitals"]["systolic_bp"], data["vitals"]["diastolic_bp"] = 58, 92  # BP 58/92
    message = errors_for(data)[("vitals", "diastolic_bp")]
    assert message.startswith("Diastolic blood pressure must be lower than systolic")


def test_pregnant_male_is_refused_in_clinical_words_at_the_pregnancy_field() -> None:
    data = load_case()
    data["patient"]["pregnant"] = True
    message = errors_for(data)[("patient", "pregnant")]
    assert message.startswith("A patient recorded as male is not pregnant")


@pytest.mark.parametrize("age", [4, 71])
def test_pregnancy_at_an_implausible_age_is_refused(age: int) -> None:
    data = load_case()
    data["patient"] = {"age_years": age, "sex": "female", "pregnant": True}
    assert "implausible at this age" in errors_for(data)[("patient", "pregnant")]


def test_pregnancy_at_a_plausible_age_is_taken() -> None:
    data = load_case()
    data["patient"] = {"age_years": 31, "sex": "female", "pregnant": True}
    assert CaseInput.model_validate(data).patient.pregnant is True


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("heart_rate", "fast", "Heart rate is a whole number, from 20 to 300 beats/min"),
        ("heart_rate", 400, "Heart rate must be from 20 to 300 beats/min: this is outside the "
         "physiologic range"),
        ("spo2", 101, "SpO₂ must be from 30 to 100 %: this is outside the physiologic range"),
        ("temperature_c", 12, "Temperature must be from 25 to 45 °C: this is outside the "
         "physiologic range"),
        ("weight_kg", 0, "Weight must be above 0, up to 500 kg: this is outside the "
         "physiologic range"),
    ],
)  # fmt: skip
def test_vital_sign_refusals_say_what_is_expected_in_clinical_words(
    field: str, value: Any, message: str
) -> None:
    data = load_case()
    data["vitals"][field] = value
    assert errors_for(data)[("vitals", field)] == message


def test_age_that_is_not_a_number_says_so_plainly() -> None:
    data = load_case()
    data["patient"]["age_years"] = "sixty-four"
    assert errors_for(data)[("patient", "age_years")] == (
        "Age is a whole number, from 0 to 130 years"
    )


def test_temperature_in_fahrenheit_is_named_with_its_celsius_value() -> None:
    data = load_case()
    data["vitals"]["temperature_c"] = 98.6
    assert errors_for(data)[("vitals", "temperature_c")] == (
        "Temperature is in °C: this looks like °F, which is 37.0 °C"
    )


def test_lab_without_a_status_is_a_final_result_as_before() -> None:
    case = CaseInput.model_validate(load_case())
    assert case.labs[0].status == "final" and case.labs[0].value == 2.3


def test_pending_lab_has_a_status_and_no_value() -> None:
    data = load_case()
    data["labs"] = [{"name": "Troponin I", "status": "pending", "unit": "ng/mL"}]
    lab = CaseInput.model_validate(data).labs[0]
    assert lab.status == "pending" and lab.value is None


def test_status_typed_into_the_value_is_refused_with_the_way_to_say_it() -> None:
    data = load_case()
    data["labs"] = [{"name": "Troponin I", "value": "pending", "unit": "ng/mL"}]
    message = errors_for(data)[("labs", 0, "value")]
    assert "status, not its value" in message and "set the status" in message


def test_lab_values_that_do_not_fit_their_status_or_unit_are_refused() -> None:
    data = load_case()
    data["labs"] = [
        {"name": "Troponin I", "value": "high", "unit": "ng/mL"},  # text with a unit
        {"name": "Lactate", "status": "pending", "value": 4.1, "unit": "mmol/L"},
        {"name": "Sodium", "status": "final"},  # no result
        {"name": "Blood culture", "value": "no growth"},  # qualitative: taken
    ]
    errors = errors_for(data)
    assert "a qualitative result (e.g. positive) has no unit" in errors[("labs", 0, "unit")]
    assert errors[("labs", 1, "value")].startswith("A pending result has no value")
    assert errors[("labs", 2)].startswith("Enter the result, or set the status to pending")
    assert not any(loc[:2] == ("labs", 3) for loc in errors)


def test_numeric_lab_needs_unit_and_loinc_has_its_shape() -> None:
    data = load_case()
    data["labs"] = [
        {"name": "Sodium", "value": 140},
        {"name": "K", "loinc": "abc", "value": 4, "unit": "mmol/L"},
    ]
    errors = errors_for(data)
    assert errors[("labs", 0, "unit")] == "A numeric result needs its unit (e.g. ng/mL)"
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
    assert errors[("labs", 0, "value")].startswith("A result is a number (e.g. 2.3)")

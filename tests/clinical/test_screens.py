"""The clinician's screens through Django's test client: the case form validated by
``CaseInput``, the case page, the review form validated by ``ReviewInput``, 'My cases'."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from clinical import lifecycle
from clinical.models import Case, CaseStatus, ClinicianReview
from clinical.schemas import CaseInput
from clinical.screens.presenting import confidence_band
from clinical.services import case_submit
from reasoning.confidence import BAND_FLOORS
from tests.factories import TEST_ACTOR, load_case, signed_in, submitted_case
from tests.fakes import FakeModelServer, agreeing_completion, assessment, choice, completion

pytestmark = pytest.mark.django_db


def form_data(case: dict[str, Any]) -> dict[str, str]:
    """A case as a clinician would type it into the form's fields."""
    data = {
        "external_id": case.get("external_id", ""),
        "priority": case.get("priority", "routine"),
        "setting": case.get("setting") or "",
        "patient.age_years": str(case["patient"]["age_years"]),
        "patient.sex": case["patient"]["sex"],
        "chief_complaint": case["chief_complaint"],
        "history_of_present_illness": case.get("history_of_present_illness", ""),
        "past_medical_history": "\n".join(case.get("past_medical_history", [])),
        "question": case["question"],
    }
    for key, value in (case.get("vitals") or {}).items():
        data[f"vitals.{key}"] = str(value)
    for group in ("medications", "allergies", "labs"):
        for i, item in enumerate(case.get(group, [])):
            for key, value in item.items():
                data[f"{group}.{i}.{key}"] = str(value)
    return data


def field_errors(html: str, field_id: str) -> str:
    match = re.search(rf'<div class="field-error" id="{field_id}-error">(.*?)</div>', html, re.S)
    return match.group(1) if match else ""


def test_form_submits_the_same_case_the_api_would_take(alice: User) -> None:
    response = signed_in(alice).post("/cases/new/", form_data(load_case()))
    assert response.status_code == 302
    case = Case.objects.get(submitted_by=alice)
    assert response["Location"] == f"/cases/{case.id}/"
    assert CaseInput.model_validate(case.input) == CaseInput.model_validate(load_case())
    assert AuditEvent.objects.filter(code="case.submitted", case_id=case.id).count() == 1


def test_wrong_value_comes_back_next_to_its_field_with_everything_typed_kept(
    alice: User,
) -> None:
    data = form_data(load_case())
    data["vitals.temperature_c"] = "98.6"  # Fahrenheit typed into the °C field
    data["medications.5.dose"] = "10 mg"  # a second medication row without its name
    response = signed_in(alice).post("/cases/new/", data)
    html = response.content.decode()
    assert response.status_code == 400
    assert "looks like °F, which is 37.0 °C" in field_errors(html, "f-vitals-temperature_c")
    assert "Required" in field_errors(html, "f-medications-5-name")
    assert 'aria-invalid="true"' in html
    assert 'value="98.6"' in html and 'value="10 mg"' in html
    assert 'value="Troponin I"' in html and "Pain radiates to the left arm" in html
    assert "type 2 diabetes" in html
    assert Case.objects.count() == 0


def test_errors_in_later_rows_land_on_the_row_typed_not_the_row_sent(alice: User) -> None:
    data = {
        **form_data(load_case()),
        "labs.1.name": "",  # a blank row between two filled ones is left out of the case
        "labs.1.value": "",
        "labs.2.name": "Lactate",
        "labs.2.value": "4.1",  # numeric without a unit
    }
    html = signed_in(alice).post("/cases/new/", data).content.decode()
    assert 'id="row-labs-2"' in html
    assert "A numeric result needs its unit" in field_errors(html, "f-labs-2-unit")
    assert "Lab result 3: Unit: A numeric result needs its unit" in html


def test_missing_required_fields_and_model_level_errors_are_named(alice: User) -> None:
    data = {"patient.sex": "male", "vitals.systolic_bp": "80", "vitals.diastolic_bp": "90"}
    html = signed_in(alice).post("/cases/new/", data).content.decode()
    for field in ("f-patient-age_years", "f-chief_complaint", "f-question"):
        assert "Required" in field_errors(html, field)
    data = {**data, "patient.age_years": "30", "patient.pregnant": "yes"}
    html = signed_in(alice).post("/cases/new/", data).content.decode()
    assert "A patient recorded as male is not pregnant" in field_errors(html, "f-patient-pregnant")
    assert "Diastolic blood pressure must be lower than systolic" in field_errors(
        html, "f-vitals-diastolic_bp"
    )


def test_fahrenheit_temperature_is_converted_with_one_click(alice: User) -> None:
    client = signed_in(alice)
    data = {**form_data(load_case()), "vitals.temperature_c": "98.6"}
    html = client.post("/cases/new/", data).content.decode()
    button = re.search(r'<button[^>]*name="use_value"[^>]*>([^<]*)</button>', html)
    assert button is not None and button.group(1) == "Use 37.0 °C"
    assert 'value="vitals.temperature_c=37.0"' in button.group(0)
    # The button posts the form with its value: the field now holds °C, nothing submitted.
    converted = client.post("/cases/new/", {**data, "use_value": "vitals.temperature_c=37.0"})
    assert 'name="vitals.temperature_c" value="37.0"' in converted.content.decode()
    assert Case.objects.count() == 0
    response = client.post("/cases/new/", {**data, "vitals.temperature_c": "37.0"})
    assert response.status_code == 302
    assert Case.objects.get().input["vitals"]["temperature_c"] == 37.0


def test_pending_lab_is_entered_with_its_status_and_shown_as_pending(alice: User) -> None:
    client = signed_in(alice)
    data = {**form_data(load_case()), "labs.1.name": "Lactate", "labs.1.value": "pending"}
    html = client.post("/cases/new/", data).content.decode()
    assert "status, not its value" in field_errors(html, "f-labs-1-value")
    assert 'name="labs.1.status"' in html
    data = {**data, "labs.1.value": "", "labs.1.status": "pending"}
    response = client.post("/cases/new/", data)
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.input["labs"][1] == {
        "name": "Lactate", "loinc": None, "status": "pending", "value": None, "unit": "",
        "reference_range": "", "interpretation": "", "codings": [],
    }  # fmt: skip
    page = client.get(f"/cases/{case.id}/").content.decode()
    assert "Lactate: result pending" in page
    assert "Troponin I 2.3 ng/mL" in page


def test_rows_are_added_and_removed_without_javascript(alice: User) -> None:
    client = signed_in(alice)
    data = {**form_data(load_case()), "add_row": "medications"}
    html = client.post("/cases/new/", data).content.decode()
    assert 'name="medications.1.name"' in html
    assert 'value="metformin"' in html
    assert Case.objects.count() == 0
    data = {**form_data(load_case()), "remove_row": "medications.0"}
    html = client.post("/cases/new/", data).content.decode()
    assert 'value="metformin"' not in html
    assert 'value="penicillin"' in html


def test_only_clinicians_enter_cases(carol: User) -> None:
    assert signed_in(carol).get("/cases/new/").status_code == 403
    assert Client().get("/cases/new/").status_code == 302  # to the sign-in page


def test_navigation_offers_the_clinician_screens(alice: User, carol: User) -> None:
    html = signed_in(alice).get("/").content.decode()
    assert 'href="/cases/new/"' in html and 'href="/cases/"' in html
    assert 'href="/cases/new/"' not in signed_in(carol).get("/").content.decode()


def test_completed_case_page_shows_the_answer_with_its_grounds(
    completed_case: Case, alice: User
) -> None:
    response = signed_in(alice).get(f"/cases/{completed_case.id}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Decision support, not a decision" in html
    assert "Acute MI" in html and "Pulmonary embolism" in html
    assert "Raised troponin" in html and "Troponin I 2.3 ng/mL" in html
    assert "12-lead ECG" in html
    run = completed_case.runs.get()
    band = confidence_band(run.confidence)
    assert f"{run.confidence:.2f}" in html and f'<span class="band">{band}</span>' in html
    assert "This model has not been validated on local cases yet." in html
    assert '<details id="trace"' in html
    assert run.model_name in html and run.prompt_version in html
    assert 'name="decision"' in html  # the review form
    assert AuditEvent.objects.filter(code="case.viewed", case_id=completed_case.id).count() == 1


def test_confidence_bands_come_from_one_table() -> None:
    assert [confidence_band(v) for v in (0.9, 0.75, 0.6, 0.5, 0.2, None)] == [
        "high", "high", "moderate", "moderate", "low", "unknown"
    ]  # fmt: skip
    assert [lower for lower, _ in BAND_FLOORS] == sorted(
        (lower for lower, _ in BAND_FLOORS), reverse=True
    )


def test_other_clinicians_cases_and_malformed_ids_are_not_found(
    completed_case: Case, bob: User
) -> None:
    client = signed_in(bob)
    # Another clinician's case page: refused with the offer of emergency access (issue 19,
    # tests/clinical/test_emergency_access.py), nothing of the case shown.
    assert client.get(f"/cases/{completed_case.id}/").status_code == 403
    assert client.get(f"/cases/{completed_case.id}/status.json").status_code == 404
    assert client.post(f"/cases/{completed_case.id}/reviews/", {}).status_code == 404
    assert client.get("/cases/not-a-uuid/").status_code == 404
    assert client.get(f"/cases/{uuid.uuid4()}/").status_code == 404
    assert not AuditEvent.objects.filter(code="case.viewed").exists()


def test_status_endpoint_says_where_the_case_stands_without_patient_data(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = submitted_case(alice)
    client = signed_in(alice)
    queued = client.get(f"/cases/{case.id}/status.json").json()
    assert queued["status"] == "queued" and queued["finished"] is False
    assert "chest" not in str(queued).lower()
    html = client.get(f"/cases/{case.id}/").content.decode()
    assert "refresh the page" in html and "The model&#x27;s answer" not in html
    lifecycle.case_run(case_id=case.id)
    done = client.get(f"/cases/{case.id}/status.json").json()
    assert done["status"] == "completed" and done["finished"] is True
    assert Client().get(f"/cases/{case.id}/status.json").status_code == 401


def test_failed_case_says_why(alice: User, fake_model: FakeModelServer) -> None:
    case = submitted_case(alice)
    fake_model.push({"error": {"message": "prompt too long"}}, status=400)
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    html = signed_in(alice).get(f"/cases/{case.id}/").content.decode()
    assert "No answer for this case" in html
    reason = case.runs.get().failure_reason or case.status_detail
    assert reason and reason[:30] in html.replace("&#x27;", "'").replace("&quot;", '"')
    assert 'name="decision"' not in html


def test_modify_without_reason_comes_back_with_field_errors(
    completed_case: Case, alice: User
) -> None:
    response = signed_in(alice).post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": "modify", "differential.0.diagnosis": "", "plan.0": ""},
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "a modify needs a reason code" in field_errors(html, "f-reason_code")
    assert "a modify needs the reason in words" in field_errors(html, "f-reason_text")
    response = signed_in(alice).post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": "modify", "reason_code": "need-more-info", "reason_text": "Not yet."},
    )
    assert "Your changes: a modify needs the clinician&#x27;s own differential or plan" in (
        response.content.decode()
    )
    assert ClinicianReview.objects.count() == 0


def test_unknown_reason_code_and_missing_decision_are_refused(
    completed_case: Case, alice: User
) -> None:
    response = signed_in(alice).post(
        f"/cases/{completed_case.id}/reviews/", {"reason_code": "made-up"}
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Required" in field_errors(html, "f-decision")
    assert "non-adherence reason code" in field_errors(html, "f-reason_code")


def test_accept_ignores_the_prefilled_modify_rows(completed_case: Case, alice: User) -> None:
    response = signed_in(alice).post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": "accept", "differential.0.diagnosis": "Acute MI", "plan.0": "ECG"},
    )
    assert response.status_code == 302
    assert response["Location"].endswith("#reviews")
    review = ClinicianReview.objects.get()
    assert review.decision == "accept" and review.modified_assessment is None


def test_reviews_show_newest_first_with_the_latest_marked(
    completed_case: Case, alice: User
) -> None:
    client = signed_in(alice)
    client.post(f"/cases/{completed_case.id}/reviews/", {"decision": "accept"})
    response = client.post(
        f"/cases/{completed_case.id}/reviews/",
        {
            "decision": "modify",
            "reason_code": "need-more-info",
            "reason_text": "Repeat troponin first.",
            "differential.0.diagnosis": "Unstable angina",
            "differential.0.likelihood": "high",
            "differential.1.diagnosis": "",
            "plan.0": "",
            "plan.1": "Repeat troponin at 3 hours",
        },
    )
    assert response.status_code == 302
    latest = ClinicianReview.objects.order_by("-id").first()
    assert latest is not None and latest.source == "form"
    assert latest.modified_assessment == {
        "differential": [{"diagnosis": "Unstable angina", "likelihood": "high"}],
        "plan": ["Repeat troponin at 3 hours"],
    }
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    history = html[html.index('id="reviews"') :]
    assert history.index("Modified by alice") < history.index("Accepted by alice")
    assert history.count("Latest</span>") == 1
    assert history.index("Latest</span>") < history.index("Accepted by alice")
    assert "Repeat troponin first." in history and "Repeat troponin at 3 hours" in history


def test_auditor_is_refused_the_review(completed_case: Case, carol: User) -> None:
    # Not this person's case to open on the clinician screens: not found, as for bob.
    assert signed_in(carol).post(f"/cases/{completed_case.id}/reviews/", {}).status_code == 404


def _many_cases(user: User, n: int, **changes: Any) -> None:
    for i in range(n):
        submitted_case(user, **{"external_id": f"ED-{i:04d}", **changes})


def test_my_cases_is_empty_then_paginated_by_25(alice: User, bob: User) -> None:
    client = signed_in(alice)
    html = client.get("/cases/").content.decode()
    assert "You have not submitted any cases yet" in html
    _many_cases(alice, 27)
    _many_cases(bob, 1, external_id="BOB-1")
    first = client.get("/cases/").content.decode()
    assert first.count('<td data-label="Submitted (UTC)"><a href="/cases/') == 25
    assert "Page 1 of 2" in first and "BOB-1" not in first
    second = client.get("/cases/?page=2").content.decode()
    assert "ED-0000" in second and "ED-0001" in second and "ED-0026" not in second
    assert client.get("/cases/?page=banana").status_code == 200
    assert AuditEvent.objects.filter(code="case.listed").count() == 4  # one per page shown


def test_my_cases_searches_by_external_id_and_date(alice: User) -> None:
    _many_cases(alice, 3)
    client = signed_in(alice)
    html = client.get("/cases/?external_id=ED-0002").content.decode()
    assert "ED-0002" in html and "ED-0001" not in html and "1 case matches" in html
    case = Case.with_external_id("ED-0001").get()
    day = case.created_at.date()
    Case.objects.filter(pk=case.pk).update(created_at=case.created_at.replace(year=2020))
    html = client.get(f"/cases/?from={day.isoformat()}&to={day.isoformat()}").content.decode()
    assert "ED-0002" in html and "ED-0001" not in html
    html = client.get("/cases/?from=2020-01-01&to=2020-12-31").content.decode()
    assert "ED-0001" in html and "ED-0002" not in html
    assert "No cases match this search" in client.get("/cases/?external_id=NOPE").content.decode()
    # Ids are stored encrypted: the whole id finds its case (case ignored), part of one none.
    assert "ED-0002" in client.get("/cases/?external_id=ed-0002").content.decode()
    assert "No cases match" in client.get("/cases/?external_id=ED-000").content.decode()


def test_bad_dates_in_the_search_are_field_errors_not_500s(alice: User) -> None:
    response = signed_in(alice).get("/cases/?from=31/12/2026&to=2026-02-30")
    html = response.content.decode()
    assert response.status_code == 400
    assert html.count("Enter a date as YYYY-MM-DD") == 2
    response = signed_in(alice).get("/cases/?from=2026-05-01&to=2026-04-01")
    assert "The end date is before the start date" in response.content.decode()


def _report_for(revision: str, *, items: int = 40, count: int = 7, right: int = 5) -> Any:
    """A validation report of ``revision`` with ``right`` of ``count`` answers right in
    every confidence bin."""
    from reasoning import evaluation
    from reasoning.models import ValidationReport

    return ValidationReport.objects.create(
        model_name="fake",
        model_revision=revision,
        prompt_version="mcq.v1",
        prompt_sha256="0" * 64,
        confidence_method="self-consistency",
        dataset_name="test vignettes",
        dataset_sha256="0" * 64,
        items_total=items,
        items_answered=items,
        samples_per_item=3,
        metrics={"accuracy": 0.6},
        bins=[
            {"lower": i / evaluation.BINS, "count": count, "accuracy": right / count}
            for i in range(evaluation.BINS)
        ],
    )


def test_calibration_note_from_the_models_validation_report(
    alice: User, fake_model: FakeModelServer
) -> None:
    from reasoning import services as reasoning_services
    from tests.factories import completed_case

    # The report exists before the run finishes: the run's note (and plain words) quote it.
    report = _report_for(reasoning_services.model_revision(), count=3, right=1)
    case = completed_case(alice, fake_model)
    run = case.runs.get()
    assert run.validation_report == report
    html = signed_in(alice).get(f"/cases/{case.id}/").content.decode()
    assert "On 40 validation cases" in html and "were right 33% of the time" in html
    band = confidence_band(run.confidence).capitalize()
    usable = sum(1 for s in run.samples if s["usable"])
    assert (
        f"{band} — on 40 local test questions, answers at this confidence were right "
        f"1 in 3 times; {usable} of {len(run.samples)} samples usable"
    ) in html
    assert "has not been validated on local cases" not in html
    assert '<details id="confidence-detail">' in html


def test_confidence_note_is_frozen_when_the_run_finishes(completed_case: Case, alice: User) -> None:
    # No report when the run finished: the note says so, and keeps saying so after one is made.
    client = signed_in(alice)
    run = completed_case.runs.get()

    def shown() -> tuple[str | None, str]:
        api = client.get(f"/api/v1/cases/{completed_case.id}/").json()
        html = client.get(f"/cases/{completed_case.id}/").content.decode()
        note = re.search(r'<p class="calibration"[^>]*>(.*?)</p>', html, re.S)
        assert note is not None
        return api["result"]["confidence"]["validation_note"], note.group(1)

    before = shown()
    assert before[0] == "This model has not been validated on local cases yet."
    assert "not yet tested on local questions" in before[1]
    _report_for(run.model_revision)
    assert shown() == before
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert "On 40 validation cases" not in html


def test_run_from_before_notes_were_frozen_says_so(completed_case: Case, alice: User) -> None:
    run = completed_case.runs.get()
    # Runs are append-only: a copy as an older release wrote it (no note stored) is newest.
    run.pk, run.validation_note, run.validation_words = None, None, None
    run.save()
    _report_for(run.model_revision)  # not used to make one up after the fact
    client = signed_in(alice)
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert "not recorded for this run (before notes were frozen)" in html
    assert "On 40 validation cases" not in html
    api = client.get(f"/api/v1/cases/{completed_case.id}/").json()
    assert "before notes were frozen" in api["result"]["confidence"]["validation_note"]


def test_failed_case_is_sent_again_from_its_page(
    alice: User, bob: User, fake_model: FakeModelServer
) -> None:
    case = submitted_case(alice)
    fake_model.push({"error": {"message": "prompt too long"}}, status=400)
    lifecycle.case_run(case_id=case.id)
    assert signed_in(bob).post(f"/cases/{case.id}/rerun/").status_code == 404
    client = signed_in(alice)
    assert "Run this case again" in client.get(f"/cases/{case.id}/").content.decode()
    response = client.post(f"/cases/{case.id}/rerun/")
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.QUEUED
    again = client.post(f"/cases/{case.id}/rerun/")  # not failed any more: refused, no 500
    assert again.status_code == 302
    assert "was not sent again" in client.get(f"/cases/{case.id}/").content.decode()


def test_retry_reason_shows_while_the_case_waits(alice: User) -> None:
    case = submitted_case(alice)
    Case.objects.filter(pk=case.pk).update(
        status_detail="model server unreachable; retry 2 of 8", retries=2
    )
    client = signed_in(alice)
    assert client.get(f"/cases/{case.id}/status.json").json()["detail"] == (
        "model server unreachable; retry 2 of 8"
    )
    assert (
        "model server unreachable; retry 2 of 8"
        in client.get(f"/cases/{case.id}/").content.decode()
    )


def test_an_admin_opens_any_case_but_records_no_review(completed_case: Case) -> None:
    from tests.factories import user_with_role

    admin = user_with_role("dana", "admin")
    html = signed_in(admin).get(f"/cases/{completed_case.id}/").content.decode()
    assert "Acute MI" in html
    assert "Only clinicians record reviews." in html and 'name="decision"' not in html


def _case_with_vitals(user: User, vitals: dict[str, Any] | None) -> Case:
    data = load_case()
    data["vitals"] = vitals
    return case_submit(
        case_input=CaseInput.model_validate(data), actor=TEST_ACTOR, submitted_by=user
    )


PE_VITALS = {"heart_rate": 118, "respiratory_rate": 26, "spo2": 89}


def _early_warning_section(html: str) -> str:
    match = re.search(r'<section id="early-warning".*?</section>', html, re.S)
    assert match, "no early-warning section"
    return match.group(0)


def test_early_warning_scores_lead_the_page_before_the_model_answers(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = _case_with_vitals(alice, PE_VITALS)
    html = signed_in(alice).get(f"/cases/{case.id}/").content.decode()
    assert html.index('id="early-warning"') < html.index('class="decision-support"')
    section = _early_warning_section(html)
    assert "NEWS2 8" in section and "high risk, partial" in section
    assert "Respiratory rate 26 breaths/min: 3 points" in section
    assert "Not recorded, not scored: Systolic BP, Temperature" in section
    assert "consciousness assumed alert" in section and "air or oxygen assumed air" in section
    assert "Shock index not computed" in section
    assert "NEWS2 8 (high): the model has not answered yet. Assess the patient now" in section
    assert 'role="alert"' in section


def test_high_score_with_no_credible_red_flag_in_the_answer_is_said_plainly(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = _case_with_vitals(alice, PE_VITALS)
    junk = assessment("Pulmonary embolism")
    junk["red_flags"] = [{"flag": "True", "based_on": ["Troponin I 2.3 ng/mL"]}]
    fake_model.push(completion([choice(i, json.dumps(junk)) for i in range(3)]))
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.COMPLETED
    section = _early_warning_section(signed_in(alice).get(f"/cases/{case.id}/").content.decode())
    assert (
        "NEWS2 8 (high): the model&#x27;s answer raises no red flag. Assess the patient now."
        in section
    )


def test_high_score_with_a_red_flag_in_the_answer_still_says_assess_now(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = _case_with_vitals(alice, PE_VITALS)
    fake_model.push(agreeing_completion(["Pulmonary embolism"] * 3))
    lifecycle.case_run(case_id=case.id)
    section = _early_warning_section(signed_in(alice).get(f"/cases/{case.id}/").content.decode())
    assert "NEWS2 8 (high): assess the patient now." in section
    assert "raises no red flag" not in section


def test_high_score_on_a_failed_case_says_there_is_no_answer(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = _case_with_vitals(alice, PE_VITALS)
    fake_model.push({"error": {"message": "prompt too long"}}, status=400)
    lifecycle.case_run(case_id=case.id)
    case.refresh_from_db()
    assert case.status == CaseStatus.FAILED
    section = _early_warning_section(signed_in(alice).get(f"/cases/{case.id}/").content.decode())
    assert "NEWS2 8 (high), and the model gave no answer. Assess the patient now." in section


def test_completed_case_with_low_scores_shows_them_without_a_warning(
    completed_case: Case, alice: User
) -> None:
    section = _early_warning_section(
        signed_in(alice).get(f"/cases/{completed_case.id}/").content.decode()
    )
    assert "NEWS2 4" in section and "(low risk)" in section
    assert "Shock index 0.73" in section and "(elevated risk)" in section
    assert 'role="alert"' not in section


def test_a_case_without_vitals_says_it_has_no_scores(alice: User) -> None:
    case = _case_with_vitals(alice, None)
    section = _early_warning_section(signed_in(alice).get(f"/cases/{case.id}/").content.decode())
    assert "No vital signs recorded." in section
    assert "NEWS2" not in section


# -- Review that works (issue 18, point 2) ---------------------------------------------------


def review_rows(html: str, group: str) -> list[str]:
    names = re.findall(rf'name="({group}\.\d+(?:\.diagnosis)?)"', html)
    return sorted(set(names), key=lambda n: int(n.split(".")[1]))


def test_review_rows_are_added_and_removed_without_recording_a_review(
    completed_case: Case, alice: User
) -> None:
    client = signed_in(alice)
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    differential, plan = review_rows(html, "differential"), review_rows(html, "plan")
    assert differential and plan
    posted = {
        "decision": "modify",
        **{name: f"Diagnosis {n}" for n, name in enumerate(differential)},
        **{name: f"Step {n}" for n, name in enumerate(plan)},
    }
    response = client.post(
        f"/cases/{completed_case.id}/reviews/", {**posted, "add_row": "differential"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert len(review_rows(html, "differential")) == len(differential) + 1
    assert 'value="Diagnosis 0"' in html  # nothing typed is lost
    response = client.post(
        f"/cases/{completed_case.id}/reviews/", {**posted, "remove_row": "plan.0"}
    )
    html = response.content.decode()
    assert len(review_rows(html, "plan")) == len(plan) - 1
    assert "Step 0" not in html and (len(plan) == 1 or 'value="Step 1"' not in html)
    assert ClinicianReview.objects.count() == 0


def test_plan_steps_are_text_areas_that_keep_their_lines(completed_case: Case, alice: User) -> None:
    client = signed_in(alice)
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert '<textarea id="f-plan-0" name="plan.0"' in html
    step = "Serial troponin at 0 and 3 hours\nRepeat ECG if pain returns"
    response = client.post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": "modify", "reason_code": "need-more-info", "reason_text": "More data.",
         "plan.0": step},
    )  # fmt: skip
    assert response.status_code == 302
    modified = ClinicianReview.objects.get().modified_assessment
    assert modified is not None and modified["plan"] == [step]


def test_reason_codes_are_grouped_under_plain_headings_with_the_code_kept(
    completed_case: Case, alice: User
) -> None:
    html = signed_in(alice).get(f"/cases/{completed_case.id}/").content.decode()
    select = html[
        html.index('<select id="f-reason_code"') : html.index(
            "</select>", html.index('<select id="f-reason_code"')
        )
    ]
    assert select.count("<optgroup") == 6
    assert '<optgroup label="Does not apply to this patient">' in select
    assert (
        '<option value="need-more-info">Need more information or pending results</option>' in select
    )
    assert (
        '<option value="patient-contraindication">Contraindicated in this patient</option>'
        in select
    )
    assert len(re.findall(r'<option value="[a-z-]+"', select)) == 35


@pytest.mark.parametrize(
    ("decision", "words"), [("reject", "Rejected by alice"), ("modify", "Modified by alice")]
)
def test_an_overruled_answer_is_marked_on_the_case_page(
    completed_case: Case, alice: User, decision: str, words: str
) -> None:
    client = signed_in(alice)
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert 'id="verdict"' not in html
    client.post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": decision, "reason_code": "expert-contradicts", "reason_text": "Cardiology.",
         "differential.0.diagnosis": "Aortic dissection"},
    )  # fmt: skip
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    answer = html[html.index('<section id="answer"') : html.index('id="review-title"')]
    assert "answer-set-aside" in answer
    verdict = answer[answer.index('id="verdict"') :]
    assert words in verdict and "A specialist advised otherwise" in verdict


def test_an_accepted_answer_is_not_marked_as_set_aside(completed_case: Case, alice: User) -> None:
    client = signed_in(alice)
    client.post(f"/cases/{completed_case.id}/reviews/", {"decision": "accept"})
    html = client.get(f"/cases/{completed_case.id}/").content.decode()
    assert 'id="verdict"' not in html and "answer-set-aside" not in html


def test_my_cases_shows_the_review_state_and_the_confidence(
    completed_case: Case, alice: User
) -> None:
    client = signed_in(alice)
    submitted_case(alice)  # still queued: no answer, no review
    run = completed_case.runs.get()
    html = client.get("/cases/").content.decode()
    assert '<th scope="col">Review</th>' in html and '<th scope="col">Confidence</th>' in html
    assert "Not reviewed" in html
    assert f"{run.confidence:.2f}" in html
    client.post(
        f"/cases/{completed_case.id}/reviews/",
        {"decision": "reject", "reason_code": "expert-contradicts", "reason_text": "No."},
    )
    html = client.get("/cases/").content.decode()
    cells = re.findall(r'<td class="review-state" data-label="Review">([^<]*)</td>', html)
    assert sorted(cells) == ["Rejected", "—"]


def test_the_model_revision_is_shown_whole(completed_case: Case, alice: User) -> None:
    revision = completed_case.runs.get().model_revision
    assert len(revision) > 20  # long enough that a cut would show
    html = signed_in(alice).get(f"/cases/{completed_case.id}/").content.decode()
    assert f'<span class="mono">{revision}</span>' in html


# -- While a case waits (issue 18, point 4) --------------------------------------------------


def answered_earlier(alice: User, seconds: list[int]) -> None:
    """Routine cases answered ``seconds`` after their submission, a few minutes ago."""
    now = timezone.now()
    for s in seconds:
        case = submitted_case(alice, priority="routine")
        Case.objects.filter(id=case.id).update(
            status=CaseStatus.COMPLETED,
            created_at=now - timedelta(minutes=5, seconds=s),
            finished_at=now - timedelta(minutes=5),
        )


def test_a_queued_case_shows_its_place_and_the_wait_recent_cases_took(alice: User) -> None:
    answered_earlier(alice, [50, 60, 300])
    earlier = [submitted_case(alice, priority="routine") for _ in range(2)]
    case = submitted_case(alice, priority="routine")
    submitted_case(alice, priority="stat")  # later, but served first
    submitted_case(alice, priority="routine")  # later: behind this one
    state = signed_in(alice).get(f"/cases/{case.id}/status.json").json()
    assert state["queue"].startswith("3 cases are ahead of this one.")
    assert "answered 1:00 after submission (median of the last 3 cases)" in state["queue"]
    assert "to go." in state["queue"]
    html = signed_in(alice).get(f"/cases/{case.id}/").content.decode()
    assert "3 cases are ahead of this one." in html
    # The first of the earlier ones has no one ahead in its lane but the stat case.
    first = signed_in(alice).get(f"/cases/{earlier[0].id}/status.json").json()
    assert first["queue"].startswith("1 case is ahead of this one.")


def test_a_stat_case_counts_only_the_stat_and_urgent_cases_before_it(alice: User) -> None:
    for _ in range(3):
        submitted_case(alice, priority="routine")
    submitted_case(alice, priority="urgent")
    stat = submitted_case(alice, priority="stat")
    state = signed_in(alice).get(f"/cases/{stat.id}/status.json").json()
    assert state["queue"] == (
        "1 case is ahead of this one. No recent answered case to estimate the wait from."
    )


def test_the_tab_title_says_where_the_case_stands(alice: User, fake_model: FakeModelServer) -> None:
    client = signed_in(alice)
    case = submitted_case(alice)
    title = re.search(r"<title>(.*?)</title>", client.get(f"/cases/{case.id}/").content.decode())
    assert title is not None and title.group(1).startswith("Waiting · Case")
    fake_model.push(agreeing_completion(["Acute myocardial infarction"]))
    lifecycle.case_run(case_id=case.id)
    html = client.get(f"/cases/{case.id}/").content.decode()
    title = re.search(r"<title>(.*?)</title>", html)
    assert title is not None and title.group(1).startswith("✓ Answer ready · Case")
    state = client.get(f"/cases/{case.id}/status.json").json()
    assert state["tab_title"] == "✓ Answer ready" and state["queue"] == ""

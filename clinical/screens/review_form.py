"""The review form on the case page: accept, modify or reject, validated by ``ReviewInput``
(the model the REST API and CDS Hooks feedback use), errors put back next to the fields.

The clinician's own differential and plan are only sent with a ``modify``; with accept or
reject they are left out, so an edited-then-abandoned row never blocks the review.
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict
from pydantic import ValidationError

from clinical.reasons import reason_groups
from clinical.schemas import Decision, ReviewInput
from clinical.screens.fields import FormField, closest_target, pydantic_errors

MAX_DIAGNOSES = 10  # ReviewInput.differential max_length
MAX_PLAN = 10  # ReviewInput.plan max_length
SPARE_ROWS = 1  # blank rows under the model's own, on a fresh form
LIKELIHOOD_CHOICES = [("high", "High"), ("moderate", "Moderate"), ("low", "Low")]
DECISION_CHOICES = [
    (Decision.ACCEPT.value, "Accept", "the answer is sound as it stands"),
    (Decision.MODIFY.value, "Modify", "give your own differential and plan below"),
    (Decision.REJECT.value, "Reject", "the answer should not be used"),
]


REASON_PROMPT = [("", "Choose a reason…")]


class ReviewForm:
    def __init__(
        self,
        *,
        decision: str,
        reason_code: str,
        reason_text: str,
        differential: list[tuple[str, str]],
        plan: list[str],
    ) -> None:
        self.decision = FormField(name="decision", label="Your decision", value=decision)
        self.reason_code = FormField(
            name="reason_code",
            label="Reason",
            kind="select",
            choices=REASON_PROMPT,
            groups=reason_groups(),
            value=reason_code,
            hint="Required to modify or reject",
            wide=True,
        )
        self.reason_text = FormField(
            name="reason_text",
            label="Reason in your words",
            kind="textarea",
            value=reason_text,
            hint="Required to modify or reject",
        )
        self._differential = differential[:MAX_DIAGNOSES]
        self._plan = plan[:MAX_PLAN]
        self._build_rows()
        self.change_errors: list[str] = []  # "a modify needs the clinician's own …"
        self.form_errors: list[str] = []
        self._positions: dict[str, list[int]] = {"differential": [], "plan": []}

    def _build_rows(self) -> None:
        """The rows' fields from their values, numbered by position (as they are posted)."""
        self.differential = [
            (
                FormField(
                    name=f"differential.{i}.diagnosis",
                    label="Diagnosis",
                    value=dx,
                    context=f"Diagnosis {i + 1}: ",
                ),
                FormField(
                    name=f"differential.{i}.likelihood",
                    label="Likelihood",
                    kind="select",
                    choices=LIKELIHOOD_CHOICES,
                    value=likelihood,
                    context=f"Diagnosis {i + 1}: ",
                ),
            )
            for i, (dx, likelihood) in enumerate(self._differential)
        ]
        self.plan = [
            FormField(name=f"plan.{i}", label=f"Step {i + 1}", kind="textarea", value=step)
            for i, step in enumerate(self._plan)
        ]

    @property
    def may_add_diagnosis(self) -> bool:
        return len(self._differential) < MAX_DIAGNOSES

    @property
    def may_add_step(self) -> bool:
        return len(self._plan) < MAX_PLAN

    def apply_row_action(self, data: QueryDict) -> bool:
        """The "Add a diagnosis/step" and "Remove" buttons post the form; True when one was
        pressed: the form comes back with the change and nothing is recorded."""
        add, remove = data.get("add_row", ""), data.get("remove_row", "")
        group, _, index = remove.partition(".")
        if add == "differential" and self.may_add_diagnosis:
            self._differential.append(("", "moderate"))
        elif add == "plan" and self.may_add_step:
            self._plan.append("")
        elif group == "differential" and index.isdigit():
            del self._differential[int(index) : int(index) + 1]
        elif group == "plan" and index.isdigit():
            del self._plan[int(index) : int(index) + 1]
        elif not (add or remove):
            return False
        self._build_rows()
        return True

    @classmethod
    def initial(cls, answer: dict[str, Any] | None) -> ReviewForm:
        """A fresh form, the modify rows pre-filled with the model's own answer to edit."""
        answer = answer or {}
        return cls(
            decision="",
            reason_code="",
            reason_text="",
            differential=[
                (d.get("diagnosis", ""), d.get("likelihood", "moderate"))
                for d in answer.get("differential", [])
            ][: MAX_DIAGNOSES - SPARE_ROWS]
            + [("", "moderate")] * SPARE_ROWS,
            plan=[s.get("action", "") for s in answer.get("next_steps", [])][
                : MAX_PLAN - SPARE_ROWS
            ]
            + [""] * SPARE_ROWS,
        )

    @classmethod
    def from_post(cls, data: QueryDict) -> ReviewForm:
        differential = []
        for i in range(MAX_DIAGNOSES):
            if f"differential.{i}.diagnosis" in data:
                differential.append(
                    (
                        data.get(f"differential.{i}.diagnosis", ""),
                        data.get(f"differential.{i}.likelihood", "moderate"),
                    )
                )
        plan = [data.get(f"plan.{i}", "") for i in range(MAX_PLAN) if f"plan.{i}" in data]
        return cls(
            decision=data.get("decision", ""),
            reason_code=data.get("reason_code", ""),
            reason_text=data.get("reason_text", ""),
            differential=differential,
            plan=plan,
        )

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.decision.value:
            data["decision"] = self.decision.value
        if self.reason_code.value:
            data["reason_code"] = self.reason_code.value
        if self.reason_text.value.strip():
            data["reason_text"] = self.reason_text.value
        if self.decision.value == Decision.MODIFY.value:
            differential = []
            for i, (dx, likelihood) in enumerate(self.differential):
                if dx.value.strip():
                    differential.append({"diagnosis": dx.value, "likelihood": likelihood.value})
                    self._positions["differential"].append(i)
            plan = []
            for i, step in enumerate(self.plan):
                if step.value.strip():
                    plan.append(step.value)
                    self._positions["plan"].append(i)
            data["differential"] = differential
            data["plan"] = plan
        return data

    def validate(self) -> ReviewInput | None:
        try:
            return ReviewInput.model_validate(self.payload())
        except ValidationError as exc:
            self._attach(exc)
            return None

    def all_fields(self) -> list[FormField]:
        fields = [self.decision, self.reason_code, self.reason_text, *self.plan]
        for dx, likelihood in self.differential:
            fields += [dx, likelihood]
        return fields

    def _attach(self, exc: ValidationError) -> None:
        by_name = {f.name: f for f in self.all_fields()}
        for loc, msg in pydantic_errors(exc):
            parts = list(loc)
            if (
                parts[:1] in (["differential"], ["plan"])
                and len(parts) > 1
                and isinstance(parts[1], int)
            ):
                parts[1] = self._positions[str(parts[0])][parts[1]]
            target = closest_target(parts, set(by_name))
            if target:
                by_name[target].errors.append(msg)
            elif parts[:1] in (["differential"], ["plan"]) or not parts:
                self.change_errors.append(msg)
            else:
                self.form_errors.append(msg)

    def error_summary(self) -> list[dict[str, str]]:
        summary = [{"label": "Review", "msg": m, "anchor": "review-form"} for m in self.form_errors]
        summary += [
            {"label": "Your changes", "msg": m, "anchor": "review-changes"}
            for m in self.change_errors
        ]
        for f in self.all_fields():
            label = f"{f.context}{f.label}" if f.context else f.label
            anchor = "review-decision" if f.name == "decision" else f.id
            summary += [{"label": label, "msg": m, "anchor": anchor} for m in f.errors]
        return summary

    def context(self) -> dict[str, Any]:
        return {
            "review_form": self,
            "decision_choices": DECISION_CHOICES,
            "review_errors": self.error_summary(),
        }

"""The case entry form: posted fields → the ``CaseInput`` JSON shape → the same pydantic
validation the REST API runs, with each error put back next to its field.

Nothing the clinician typed is dropped: the form re-renders from the posted values, blank
repeating rows included. Rows (medications, allergies, labs) carry their own index in the
field name; blank rows are left out of the case and error locations are mapped back to
the row the clinician sees.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from pydantic import ValidationError

from clinical.schemas import (
    FAHRENHEIT_BODY_RANGE,
    CaseInput,
    LabStatus,
    Priority,
    Setting,
    Severity,
    Sex,
    fahrenheit_to_celsius,
)
from clinical.screens.fields import FormField, closest_target, pydantic_errors

BLANK_ROWS = 1  # blank rows a fresh form shows per repeating group
MAX_ROWS = 200  # the largest list CaseInput takes (labs); more rows are not rendered

SETTING_CHOICES = [("", "Not stated")] + [(s.value, s.value.capitalize()) for s in Setting]
PRIORITY_CHOICES = [(p.value, p.value.capitalize()) for p in Priority]
SEX_CHOICES = [("", "Choose…")] + [(s.value, s.value.capitalize()) for s in Sex]
PREGNANT_CHOICES = [("", "Not stated"), ("yes", "Pregnant"), ("no", "Not pregnant")]
SEVERITY_CHOICES = [(s.value, s.value.capitalize()) for s in Severity]
LAB_STATUS_CHOICES = [(s.value, s.value.capitalize()) for s in LabStatus]

# (name, label, kind, extra) for the single fields, in page order.
CASE_FIELDS: list[dict[str, Any]] = [
    {"name": "external_id", "label": "External id", "hint": "Encounter or record number, optional"},
    {"name": "priority", "label": "Priority", "kind": "select", "choices": PRIORITY_CHOICES},
    {"name": "setting", "label": "Setting", "kind": "select", "choices": SETTING_CHOICES},
    {"name": "patient.age_years", "label": "Age (years)", "kind": "number", "required": True},
    {"name": "patient.sex", "label": "Sex", "kind": "select", "choices": SEX_CHOICES,
     "required": True},
    {"name": "patient.pregnant", "label": "Pregnancy", "kind": "select",
     "choices": PREGNANT_CHOICES},
    {"name": "chief_complaint", "label": "Chief complaint", "required": True, "wide": True,
     "placeholder": "e.g. Crushing chest pain for 40 minutes"},
    {"name": "history_of_present_illness", "label": "History of present illness",
     "kind": "textarea"},
    {"name": "past_medical_history", "label": "Past medical history", "kind": "textarea",
     "hint": "One condition per line"},
    {"name": "vitals.heart_rate", "label": "Heart rate (beats/min)", "kind": "number"},
    {"name": "vitals.systolic_bp", "label": "Systolic BP (mmHg)", "kind": "number"},
    {"name": "vitals.diastolic_bp", "label": "Diastolic BP (mmHg)", "kind": "number"},
    {"name": "vitals.respiratory_rate", "label": "Respiratory rate (breaths/min)",
     "kind": "number"},
    {"name": "vitals.temperature_c", "label": "Temperature (°C)", "kind": "number"},
    {"name": "vitals.spo2", "label": "SpO₂ (%)", "kind": "number"},
    {"name": "vitals.weight_kg", "label": "Weight (kg)", "kind": "number"},
    {"name": "question", "label": "Your question", "kind": "textarea", "required": True,
     "placeholder": "e.g. What is the most likely diagnosis, and what should be done next?"},
]  # fmt: skip


@dataclass(frozen=True)
class RowSpec:
    group: str  # the CaseInput list: medications | allergies | labs
    noun: str  # "Medication", for labels and buttons
    title: str  # "Medications", the fieldset's legend
    columns: list[dict[str, Any]]

    def blank_values(self) -> dict[str, str]:
        return {c["name"]: c.get("default", "") for c in self.columns}


ROW_SPECS = [
    RowSpec(
        "medications",
        "Medication",
        "Medications",
        [
            {"name": "name", "label": "Name", "required": True},
            {"name": "dose", "label": "Dose (with unit)", "placeholder": "500 mg"},
            {"name": "route", "label": "Route", "placeholder": "oral"},
            {"name": "frequency", "label": "Frequency", "placeholder": "twice daily"},
        ],
    ),
    RowSpec(
        "allergies",
        "Allergy",
        "Allergies",
        [
            {"name": "substance", "label": "Substance", "required": True},
            {"name": "reaction", "label": "Reaction"},
            {
                "name": "severity",
                "label": "Severity",
                "kind": "select",
                "choices": SEVERITY_CHOICES,
                "default": Severity.UNKNOWN.value,
            },
        ],
    ),
    RowSpec(
        "labs",
        "Lab result",
        "Lab results",
        [
            {"name": "name", "label": "Test", "required": True},
            {"name": "value", "label": "Value", "placeholder": "2.3, or empty if pending"},
            {"name": "unit", "label": "Unit", "placeholder": "ng/mL"},
            {
                "name": "status",
                "label": "Status",
                "kind": "select",
                "choices": LAB_STATUS_CHOICES,
                "default": LabStatus.FINAL.value,
            },
            {"name": "reference_range", "label": "Reference range", "placeholder": "<0.04"},
            {"name": "loinc", "label": "LOINC code", "placeholder": "10839-9"},
        ],
    ),
]
ROW_SPEC_BY_GROUP = {spec.group: spec for spec in ROW_SPECS}
_ROW_FIELD = re.compile(r"^(medications|allergies|labs)\.(\d{1,4})\.([a-z_]+)$")


@dataclass
class Row:
    spec: RowSpec
    index: int  # the index in the field names, stable while the form is edited
    number: int  # 1-based position shown to the clinician
    fields: list[FormField]
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.spec.group}.{self.index}"

    @property
    def id(self) -> str:
        return f"row-{self.spec.group}-{self.index}"

    @property
    def is_blank(self) -> bool:
        return all(f.is_blank for f in self.fields)


def make_row(spec: RowSpec, index: int, number: int, values: dict[str, str]) -> Row:
    fields = [
        FormField(
            name=f"{spec.group}.{index}.{col['name']}",
            label=col["label"],
            value=values.get(col["name"], col.get("default", "")),
            kind=col.get("kind", "text"),
            choices=col.get("choices", ()),
            required=col.get("required", False),
            placeholder=col.get("placeholder", ""),
            hint=col.get("hint", ""),
            default=col.get("default", ""),
            context=f"{spec.noun} {number}: ",
        )
        for col in spec.columns
    ]
    return Row(spec=spec, index=index, number=number, fields=fields)


@dataclass
class RowGroup:
    spec: RowSpec
    rows: list[Row]
    errors: list[str] = field(default_factory=list)

    @property
    def next_index(self) -> int:
        return max((r.index for r in self.rows), default=-1) + 1

    def add_blank(self) -> None:
        if len(self.rows) < MAX_ROWS:
            index = self.next_index
            self.rows.append(make_row(self.spec, index, len(self.rows) + 1, {}))

    def remove(self, index: int) -> None:
        kept = [r for r in self.rows if r.index != index]
        self.rows = [
            make_row(self.spec, r.index, n, {f.name.rsplit(".", 1)[1]: f.value for f in r.fields})
            for n, r in enumerate(kept, start=1)
        ]

    def template_row(self) -> Row:
        """The row the page's script copies; ``__index__``/``__number__`` are filled in."""
        row = make_row(self.spec, 0, 0, {})
        for f in row.fields:
            f.name = f"{self.spec.group}.__index__.{f.name.rsplit('.', 1)[1]}"
            f.context = f"{self.spec.noun} __number__: "
        row.index = "__index__"  # type: ignore[assignment]
        row.number = "__number__"  # type: ignore[assignment]
        return row


def _number(raw: str) -> float | str:
    """A lab value typed as a number is sent as one (so it needs a unit), else as text."""
    try:
        value = float(raw)
    except ValueError:
        return raw
    return value if math.isfinite(value) else raw


class CaseForm:
    def __init__(self, values: dict[str, str], rows: dict[str, list[dict[str, str]]]) -> None:
        self.fields = {
            spec["name"]: FormField(
                name=spec["name"],
                label=spec["label"],
                kind=spec.get("kind", "text"),
                choices=spec.get("choices", ()),
                hint=spec.get("hint", ""),
                required=spec.get("required", False),
                placeholder=spec.get("placeholder", ""),
                wide=spec.get("wide", False),
                value=values.get(spec["name"], ""),
            )
            for spec in CASE_FIELDS
        }
        if not self.fields["priority"].value:
            self.fields["priority"].value = Priority.ROUTINE.value
        self.groups: dict[str, RowGroup] = {}
        for spec in ROW_SPECS:
            posted = rows.get(spec.group, [])
            self.groups[spec.group] = RowGroup(
                spec,
                [
                    make_row(spec, int(r["__index__"]), n, r)
                    for n, r in enumerate(posted[:MAX_ROWS], start=1)
                ],
            )
        self.group_errors: dict[str, list[str]] = {"patient": [], "vitals": []}
        self.form_errors: list[str] = []
        self._row_positions: dict[str, list[int]] = {}

    @classmethod
    def blank(cls) -> CaseForm:
        form = cls({}, {})
        for group in form.groups.values():
            for _ in range(BLANK_ROWS):
                group.add_blank()
        return form

    @classmethod
    def from_post(cls, data: QueryDict) -> CaseForm:
        values = {name: data.get(name, "") for name in (s["name"] for s in CASE_FIELDS)}
        by_group: dict[str, dict[int, dict[str, str]]] = {}
        for key in data:
            match = _ROW_FIELD.match(key)
            if match and match.group(3) in ROW_SPEC_BY_GROUP[match.group(1)].blank_values():
                row = by_group.setdefault(match.group(1), {}).setdefault(int(match.group(2)), {})
                row[match.group(3)] = data.get(key, "")
        rows = {
            group: [{**values_, "__index__": str(i)} for i, values_ in sorted(found.items())]
            for group, found in by_group.items()
        }
        return cls(values, rows)

    # -- editing rows without JavaScript ---------------------------------------------------

    def apply_row_action(self, data: QueryDict) -> bool:
        """ "Add a row" / "Remove" / "Use 37.0 °C" buttons post the form; True when one of
        them was pressed (the form comes back with the change, not submitted)."""
        add = data.get("add_row", "")
        if add in self.groups:
            self.groups[add].add_blank()
            return True
        name, _, value = data.get("use_value", "").partition("=")
        if name in self.fields and value:
            self.fields[name].value = value
            return True
        remove = data.get("remove_row", "")
        group, _, index = remove.partition(".")
        if group in self.groups and index.isdigit():
            self.groups[group].remove(int(index))
            return True
        return False

    # -- the case as JSON, and its validation -----------------------------------------------

    def _value(self, name: str) -> str:
        return self.fields[name].value.strip()

    def payload(self) -> dict[str, Any]:
        """The posted form as the API's JSON: blanks left out so defaults apply, exactly
        as an integrator would leave out a field it does not have."""
        data: dict[str, Any] = {}
        for name in ("external_id", "priority", "setting", "chief_complaint"):
            if self._value(name):
                data[name] = self._value(name)
        for name in ("history_of_present_illness", "question"):
            if self._value(name):
                data[name] = self.fields[name].value.strip()
        patient: dict[str, Any] = {}
        if self._value("patient.age_years"):
            patient["age_years"] = self._value("patient.age_years")
        if self._value("patient.sex"):
            patient["sex"] = self._value("patient.sex")
        pregnant = self._value("patient.pregnant")
        if pregnant:
            patient["pregnant"] = {"yes": True, "no": False}.get(pregnant, pregnant)
        data["patient"] = patient
        history = [line.strip() for line in self.fields["past_medical_history"].value.splitlines()]
        if any(history):
            data["past_medical_history"] = [line for line in history if line]
        vitals = {
            name.split(".", 1)[1]: self._value(name)
            for name in self.fields
            if name.startswith("vitals.") and self._value(name)
        }
        if vitals:
            data["vitals"] = vitals
        for group in self.groups.values():
            items = []
            positions = []
            for row in group.rows:
                if row.is_blank:
                    continue
                item: dict[str, Any] = {}
                for f in row.fields:
                    column = f.name.rsplit(".", 1)[1]
                    value = f.value.strip()
                    if value:
                        item[column] = _number(value) if column == "value" else value
                items.append(item)
                positions.append(row.index)
            if items:
                data[group.spec.group] = items
            self._row_positions[group.spec.group] = positions
        return data

    def validate(self) -> CaseInput | None:
        data = self.payload()
        try:
            return CaseInput.model_validate(data)
        except ValidationError as exc:
            self._attach(exc)
            return None

    def _targets(self) -> set[str]:
        targets = set(self.fields) | set(self.group_errors) | set(self.groups)
        for group in self.groups.values():
            for row in group.rows:
                targets.add(row.key)
                targets.update(f.name for f in row.fields)
        return targets

    def _attach(self, exc: ValidationError) -> None:
        targets = self._targets()
        history_lines = [
            n
            for n, line in enumerate(self.fields["past_medical_history"].value.splitlines(), 1)
            if line.strip()
        ]
        for loc, msg in pydantic_errors(exc):
            parts = list(loc)
            if parts and parts[0] in self.groups and len(parts) > 1 and isinstance(parts[1], int):
                parts[1] = self._row_positions[parts[0]][parts[1]]
            if parts[:1] == ["past_medical_history"] and len(parts) > 1:
                msg = f"line {history_lines[parts[1]]}: {msg}"
            target = closest_target(parts, targets)
            self._add_error(target, msg)
        self._offer_celsius()

    def _offer_celsius(self) -> None:
        """A temperature refused as °F gets a button that puts its °C value in its place."""
        field = self.fields["vitals.temperature_c"]
        try:
            typed = float(field.value)
        except ValueError:
            return
        low, high = FAHRENHEIT_BODY_RANGE
        if field.errors and low <= typed <= high:
            celsius = f"{fahrenheit_to_celsius(typed):.1f}"
            field.suggestion = (celsius, f"Use {celsius} °C")

    def _add_error(self, target: str, msg: str) -> None:
        if target in self.fields:
            self.fields[target].errors.append(msg)
        elif target in self.group_errors:
            self.group_errors[target].append(msg)
        elif target in self.groups:
            self.groups[target].errors.append(msg)
        else:
            for group in self.groups.values():
                for row in group.rows:
                    if target == row.key:
                        row.errors.append(msg)
                        return
                    for f in row.fields:
                        if target == f.name:
                            f.errors.append(msg)
                            return
            self.form_errors.append(msg)

    # -- what the template shows ------------------------------------------------------------

    @property
    def has_errors(self) -> bool:
        return bool(self.error_summary())

    def error_summary(self) -> list[dict[str, str]]:
        """Every message with the place it belongs, for the list at the top of the form."""
        summary = [{"label": "Case", "msg": m, "anchor": "case-form"} for m in self.form_errors]
        for name, f in self.fields.items():
            summary += [{"label": f.label, "msg": m, "anchor": f.id} for m in f.errors]
            if name == "patient.pregnant":
                summary += [
                    {"label": "Patient", "msg": m, "anchor": "patient"}
                    for m in self.group_errors["patient"]
                ]
            if name == "vitals.weight_kg":
                summary += [
                    {"label": "Vital signs", "msg": m, "anchor": "vitals"}
                    for m in self.group_errors["vitals"]
                ]
        for group in self.groups.values():
            noun = group.spec.noun
            summary += [
                {"label": group.spec.title, "msg": m, "anchor": group.spec.group}
                for m in group.errors
            ]
            for row in group.rows:
                summary += [
                    {"label": f"{noun} {row.number}", "msg": m, "anchor": row.id}
                    for m in row.errors
                ]
                for f in row.fields:
                    summary += [
                        {"label": f"{noun} {row.number}: {f.label}", "msg": m, "anchor": f.id}
                        for m in f.errors
                    ]
        return summary

    def section(self, *names: str) -> list[FormField]:
        return [self.fields[n] for n in names]

    def context(self) -> dict[str, Any]:
        vitals = [f for n, f in self.fields.items() if n.startswith("vitals.")]
        return {
            "form": self,
            "case_fields": self.section("external_id", "priority", "setting"),
            "patient_fields": self.section("patient.age_years", "patient.sex", "patient.pregnant"),
            "story_fields": self.section(
                "chief_complaint", "history_of_present_illness", "past_medical_history"
            ),
            "vitals_fields": vitals,
            "question_field": self.fields["question"],
            "groups": list(self.groups.values()),
            "errors": self.error_summary(),
        }

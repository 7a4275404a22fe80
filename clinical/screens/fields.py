"""What a screen's form field is, and how pydantic's error locations find their field.

Form field names are the pydantic ``loc`` joined by dots (``patient.age_years``,
``medications.2.dose``), so an error from the same model the REST API uses lands next
to the field the clinician typed into.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


@dataclass
class FormField:
    name: str
    label: str
    value: str = ""
    kind: str = "text"  # text | number | textarea | select
    choices: Sequence[tuple[str, str]] = ()
    # A select's options under headings (<optgroup>), after ``choices``.
    groups: Sequence[tuple[str, Sequence[tuple[str, str]]]] = ()
    hint: str = ""
    required: bool = False
    placeholder: str = ""
    default: str = ""
    wide: bool = False  # a whole line of the form, like a text area
    errors: list[str] = field(default_factory=list)
    # A corrected value offered next to the error, as (value, button label).
    suggestion: tuple[str, str] | None = None
    # Screen-reader prefix for fields repeated in rows ("Medication 2: ").
    context: str = ""

    @property
    def id(self) -> str:
        return "f-" + self.name.replace(".", "-")

    @property
    def is_blank(self) -> bool:
        return self.value.strip() in ("", self.default)


def clean_message(error: ErrorDetails) -> str:
    msg = str(error["msg"])
    if error.get("type") == "missing":
        return "Required"
    return msg.removeprefix("Value error, ")


def pydantic_errors(exc: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    """(loc, message) pairs; for a ``float | str`` union (a lab value), only the branch
    that explains the problem is kept (the string one, since numbers were parsed first)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    locs = {tuple(e["loc"]) for e in errors}
    kept = []
    for error in errors:
        loc = tuple(error["loc"])
        if loc and loc[-1] == "float" and (*loc[:-1], "str") in locs:
            continue
        if loc and loc[-1] in ("float", "str"):
            loc = loc[:-1]
        kept.append((loc, clean_message(error)))
    return kept


def closest_target(loc: Iterable[Any], targets: set[str]) -> str:
    """The longest prefix of ``loc`` that names a field, a row or a group; "" for the form."""
    parts = [str(p) for p in loc]
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in targets:
            return key
    return ""

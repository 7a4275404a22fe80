"""FHIR R4 intake: a Bundle (transaction, collection, searchset) mapped to ``CaseInput``.

Resources are validated with the ``fhir.resources`` R4B models (R4B shares R4's shapes for
every resource mapped here), but only the types we map: a Synthea record carries
hundreds of Claims and ExplanationOfBenefits that would cost time and tell the model
nothing. Those are counted and reported back as ignored.

The case is the patient's latest encounter: its setting, its vital signs and labs, the
conditions active at its start, the active medications and allergies. Errors are raised
as ``FhirIntakeError`` with ``loc`` paths into the Bundle (``["entry", 3, "resource",
"valueQuantity", "value"]``), so an integrator can find the offending entry.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from clinical.schemas import CaseInput, CodeSystem

DEFAULT_QUESTION = "What is the most likely diagnosis, and what should be done next?"
BUNDLE_TYPES = ("transaction", "collection", "searchset", "batch")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"

# The types this module reads; every other resource type is counted and ignored.
MAPPED_TYPES = (
    "Patient",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationRequest",
    "MedicationStatement",
    "Medication",
    "AllergyIntolerance",
    "Parameters",
)

# Encounter.class (v3 ActCode) → CaseInput.setting.
SETTING_BY_CLASS = {
    "AMB": "outpatient",
    "VR": "outpatient",
    "HH": "outpatient",
    "FLD": "outpatient",
    "EMER": "emergency",
    "IMP": "inpatient",
    "ACUTE": "inpatient",
    "NONAC": "inpatient",
    "OBSENC": "inpatient",
    "PRENC": "inpatient",
    "SS": "inpatient",
}

# LOINC → CaseInput.vitals field. Panels (blood pressure) are read through components.
VITAL_BY_LOINC = {
    "8867-4": "heart_rate",
    "8480-6": "systolic_bp",
    "8462-4": "diastolic_bp",
    "9279-1": "respiratory_rate",
    "8310-5": "temperature_c",
    "8331-1": "temperature_c",  # oral temperature
    "2708-6": "spo2",
    "59408-5": "spo2",
    "29463-7": "weight_kg",
    "3141-9": "weight_kg",  # body weight measured
}
BLOOD_PRESSURE_PANELS = {"85354-9", "55284-4"}
WEIGHT_LOINC = {"29463-7", "3141-9"}
INTEGER_VITALS = {"heart_rate", "systolic_bp", "diastolic_bp", "respiratory_rate", "spo2"}
# A weight is still useful for dosing when the latest encounter did not weigh the patient.
WEIGHT_LOOKBACK = timedelta(days=365)

ACTIVE_CONDITION = {"active", "recurrence", "relapse"}
NOT_TRUE = {"refuted", "entered-in-error"}
PREGNANCY_SNOMED = {"72892002", "77386006"}  # normal pregnancy, pregnant
# "No known allergy" statements are not substances.
NO_KNOWN_ALLERGY_SNOMED = {
    "716186003",
    "409137002",
    "428607008",
    "429625007",
    "1631000175102",
}
LOINC_CODE = re.compile(r"^\d{1,7}-\d$")


class FhirIntakeError(Exception):
    """The Bundle cannot be read (400): each error names where in it, and what is wrong."""

    status = 400

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.errors = errors


class EmptyCaseError(FhirIntakeError):
    """The Bundle is readable but holds nothing to reason over beyond the patient's age and
    sex (422): a case without a complaint, condition, medication, allergy, vital sign or
    lab would be "completed" with an answer about nobody in particular."""

    status = 422


EMPTY_CASE = (
    "the record holds no clinical content beyond demographics: no reason for the encounter, "
    "condition, medication, allergy, vital sign or lab result; send the record, or give the "
    "chief_complaint"
)


def _error(loc: list[Any], msg: str) -> FhirIntakeError:
    return FhirIntakeError([{"loc": loc, "msg": msg}])


@dataclass(frozen=True)
class CaseParameters:
    """What a Bundle cannot say: the clinician's question and how the case is filed."""

    question: str = ""
    chief_complaint: str = ""
    priority: str = ""
    external_id: str = ""
    # The encounter the case is about (an Encounter's id); default: the latest one.
    encounter_id: str = ""


@dataclass
class FhirIntake:
    case_input: CaseInput
    encounter: str  # the reference of the encounter the case was built from
    mapped: dict[str, int] = field(default_factory=dict)  # validated and read
    ignored: dict[str, int] = field(default_factory=dict)  # types Bedside does not read
    skipped: dict[str, int] = field(default_factory=dict)  # of other encounters, not read
    # Values read but left out of the case, each with where it is and why (a unit that
    # cannot be converted, say): never dropped without a word.
    refused: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "encounter": self.encounter,
            "mapped": self.mapped,
            "ignored": self.ignored,
            "skipped": self.skipped,
            "refused": self.refused,
        }


@dataclass
class _Entry:
    index: int
    full_url: str
    resource: Any  # a validated fhir.resources model

    @property
    def loc(self) -> list[Any]:
        return ["entry", self.index, "resource"]


# --- small readers over the FHIR datatypes ------------------------------------------------


def _text(concept: Any) -> str:
    """A CodeableConcept in words: its text, else its first coding's display, else code."""
    if concept is None:
        return ""
    if concept.text:
        return str(concept.text).strip()
    for coding in concept.coding or []:
        if coding.display:
            return str(coding.display).strip()
    for coding in concept.coding or []:
        if coding.code:
            return str(coding.code)
    return ""


def _codings(concept: Any) -> list[dict[str, str]]:
    """The codings of a CodeableConcept in the terminologies a case carries (SNOMED CT,
    RxNorm, LOINC, ICD-10), as ``CaseInput`` codings; others are left out."""
    found: list[dict[str, str]] = []
    systems = {str(system) for system in CodeSystem}
    for coding in (concept.coding or []) if concept is not None else []:
        system, code = str(coding.system or ""), str(coding.code or "").strip()
        if system not in systems or not code or len(code) > 64:
            continue
        item = {"system": system, "code": code}
        if coding.display:
            item["display"] = _short(str(coding.display))
        if item not in found:
            found.append(item)
    return found[:10]


def _codes(concept: Any, system: str | None = None) -> set[str]:
    if concept is None:
        return set()
    return {
        str(c.code)
        for c in concept.coding or []
        if c.code and (system is None or c.system == system)
    }


def _any_code(concepts: list[Any] | None) -> set[str]:
    codes: set[str] = set()
    for concept in concepts or []:
        codes |= _codes(concept)
    return codes


def _instant(value: Any) -> datetime | None:
    """A FHIR date or dateTime (possibly partial, possibly naive) as an aware datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value)
    match = re.match(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", text)
    if not match:
        return None
    year, month, day = match.groups()
    return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)


def _birth_date(value: Any) -> date | None:
    moment = _instant(value)
    return moment.date() if moment else None


def _age_at(birth: date, when: date) -> int:
    return when.year - birth.year - ((when.month, when.day) < (birth.month, birth.day))


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Decimal | float | int | None) -> float | None:
    return None if value is None else float(value)


def _format_quantity(quantity: Any) -> str:
    if quantity is None or quantity.value is None:
        return ""
    number = format(Decimal(quantity.value).normalize(), "f")
    unit = quantity.unit or quantity.code or ""
    return f"{number} {unit}".strip()


# --- unit conversion (UCUM codes as FHIR carries them) --------------------------------------


def _convert_vital(name: str, value: float, quantity: Any) -> float | None:
    """The value in the unit of the CaseInput field, or None for a unit we cannot convert."""
    unit = str(quantity.code or quantity.unit or "").strip()
    if name == "temperature_c":
        if unit in ("Cel", "°C", "C", "degC", ""):
            return value
        if unit in ("[degF]", "°F", "F", "degF"):
            return (value - 32) * 5 / 9
        if unit == "K":
            return value - 273.15
        return None
    if name == "weight_kg":
        factors = {"kg": 1.0, "": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237}
        factors["[oz_av]"] = 0.028349523125
        return value * factors[unit] if unit in factors else None
    if name == "spo2":
        if unit in ("%", ""):
            return value
        # A saturation given as a fraction (UCUM "1", or an annotation of it) is a percent.
        if unit in ("1", "{fraction}", "{ratio}", "{saturation}") and 0 <= value <= 1:
            return value * 100
        return None
    if name in ("systolic_bp", "diastolic_bp"):
        if unit in ("mm[Hg]", "mmHg", ""):
            return value
        return value * 7.50062 if unit == "kPa" else None
    # heart and respiratory rates: counts per minute however the unit is spelt
    if unit in ("/min", "{beats}/min", "{breaths}/min", "beats/min", "breaths/min", ""):
        return value
    if unit in ("/s", "{beats}/s", "{breaths}/s", "Hz"):
        return value * 60
    if unit in ("/h", "{beats}/h", "{breaths}/h"):
        return value / 60
    return None


VITAL_UNITS = {
    "heart_rate": "/min",
    "systolic_bp": "mm[Hg]",
    "diastolic_bp": "mm[Hg]",
    "respiratory_rate": "/min",
    "temperature_c": "Cel",
    "spo2": "%",
    "weight_kg": "kg",
}


# --- the mapper ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Raw:
    index: int
    full_url: str
    resource_type: str
    resource: dict[str, Any]


def _bundle_entries(bundle: Any) -> tuple[list[_Raw], Counter[str]]:
    """The entries of the types we map (not yet validated), and a count of the others."""
    if not isinstance(bundle, dict):
        raise _error([], "a FHIR Bundle is a JSON object")
    if bundle.get("resourceType") != "Bundle":
        raise _error(["resourceType"], "must be 'Bundle'")
    if bundle.get("type") not in BUNDLE_TYPES:
        raise _error(["type"], f"must be one of {', '.join(BUNDLE_TYPES)}")
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        raise _error(["entry"], "must be a list")
    found: list[_Raw] = []
    ignored: Counter[str] = Counter()
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_entries):
        if not isinstance(raw, dict):
            errors.append({"loc": ["entry", index], "msg": "must be an object"})
            continue
        resource = raw.get("resource")
        if resource is None:
            continue  # a searchset may carry OperationOutcome-only or empty entries
        resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(resource_type, str):
            errors.append(
                {"loc": ["entry", index, "resource", "resourceType"], "msg": "is required"}
            )
            continue
        if resource_type not in MAPPED_TYPES:
            ignored[resource_type] += 1
            continue
        full_url = raw.get("fullUrl")
        found.append(
            _Raw(index, full_url if isinstance(full_url, str) else "", resource_type, resource)
        )
    if errors:
        raise FhirIntakeError(errors[:50])
    return found, ignored


def _validated(items: list[_Raw]) -> list[_Entry]:
    """Each resource through its fhir.resources R4B model; every failure named by entry."""
    entries: list[_Entry] = []
    errors: list[dict[str, Any]] = []
    for item in items:
        try:
            model = get_fhir_model_class(item.resource_type).model_validate(item.resource)
        except ValidationError as exc:
            for err in exc.errors(include_url=False, include_input=False, include_context=False):
                loc = ["entry", item.index, "resource", *err["loc"]]
                errors.append({"loc": loc, "msg": err["msg"]})
            continue
        entries.append(_Entry(index=item.index, full_url=item.full_url, resource=model))
    if errors:
        raise FhirIntakeError(errors[:50])
    return entries


def _raw_may_matter(raw: dict[str, Any], encounter_refs: set[str]) -> bool:
    """Whether an Observation can feed the case: it belongs to the case's encounter, or it
    is a weight (read from earlier encounters too). Malformed ones are kept, so that
    validation names what is wrong with them."""
    encounter = raw.get("encounter")
    if encounter is not None:
        if not isinstance(encounter, dict) or not isinstance(encounter.get("reference"), str):
            return True
        if _ref_matches(encounter["reference"], encounter_refs):
            return True
    code = raw.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return True
    return any(
        not isinstance(c, dict) or (c.get("system") == LOINC and c.get("code") in WEIGHT_LOINC)
        for c in codings
    )


def _refs(entry: _Entry) -> set[str]:
    """Every way a reference in the bundle may name this entry."""
    resource = entry.resource
    names = {entry.full_url} if entry.full_url else set()
    if resource.id:
        names.add(f"{resource.get_resource_type()}/{resource.id}")
        names.add(f"urn:uuid:{resource.id}")
    return names


def _points_to(reference: Any, targets: set[str]) -> bool:
    if reference is None or not reference.reference:
        return False
    return _ref_matches(str(reference.reference), targets)


def _ref_matches(ref: str, targets: set[str]) -> bool:
    if ref in targets:
        return True
    # An absolute URL ending in Type/id names the same resource.
    return any(ref.endswith("/" + t) for t in targets if "/" in t and not t.startswith("urn:"))


def _encounter_start(entry: _Entry) -> datetime | None:
    period = entry.resource.period
    if period is None:
        return None
    return _instant(period.start) or _instant(period.end)


def _observation_time(resource: Any) -> datetime | None:
    if resource.effectivePeriod is not None:
        return _instant(resource.effectivePeriod.start) or _instant(resource.effectivePeriod.end)
    return _instant(resource.effectiveDateTime or resource.effectiveInstant or resource.issued)


def _categories(resource: Any) -> set[str]:
    return _any_code(resource.category)


class _Assembler:
    def __init__(self, entries: list[_Entry], params: CaseParameters) -> None:
        self.params = params
        self.entries: list[_Entry] = []
        self.by_type: dict[str, list[_Entry]] = {}
        self.add(entries)
        # CaseInput field path → the FHIR location it came from, to name errors properly.
        self.sources: dict[tuple[Any, ...], list[Any]] = {}
        self.refused: list[dict[str, Any]] = []

    def add(self, entries: list[_Entry]) -> None:
        for entry in entries:
            self.by_type.setdefault(entry.resource.get_resource_type(), []).append(entry)
        self.entries.extend(entries)

    def of(self, resource_type: str) -> list[_Entry]:
        return self.by_type.get(resource_type, [])

    def patient(self) -> _Entry:
        patients = self.of("Patient")
        if not patients:
            raise _error(["entry"], "the bundle has no Patient resource")
        if len(patients) > 1:
            raise _error(
                [*patients[1].loc, "resourceType"],
                "a case is about one patient; the bundle holds more than one Patient",
            )
        return patients[0]

    def case_encounter(self, encounter_id: str) -> _Entry:
        for entry in self.of("Encounter"):
            if entry.resource.id == encounter_id:
                return entry
        raise _error(["query", "encounter_id"], "no Encounter with this id in the bundle")

    def latest_encounter(self) -> _Entry | None:
        dated = [(start, e) for e in self.of("Encounter") if (start := _encounter_start(e))]
        if not dated:
            return self.of("Encounter")[-1] if self.of("Encounter") else None
        return max(dated, key=lambda pair: pair[0])[1]

    def parameters(self) -> CaseParameters:
        """Parameters resource values, overridden by what the request itself says."""
        found: dict[str, str] = {}
        for entry in self.of("Parameters"):
            for parameter in entry.resource.parameter or []:
                if parameter.name in (
                    "question",
                    "chief_complaint",
                    "priority",
                    "external_id",
                    "encounter_id",
                ):
                    value = parameter.valueString or parameter.valueCode
                    if value:
                        found[parameter.name] = str(value)
        return CaseParameters(
            question=self.params.question or found.get("question", ""),
            chief_complaint=self.params.chief_complaint or found.get("chief_complaint", ""),
            priority=self.params.priority or found.get("priority", ""),
            external_id=self.params.external_id or found.get("external_id", ""),
            encounter_id=self.params.encounter_id or found.get("encounter_id", ""),
        )

    def vitals(
        self, encounter_refs: set[str], at: datetime | None, *, every_encounter: bool = False
    ) -> dict[str, Any]:
        best: dict[str, tuple[datetime, float, list[Any]]] = {}
        earlier_weights: list[tuple[datetime, float, list[Any]]] = []
        floor = datetime.min.replace(tzinfo=UTC)

        def offer(name: str, when: datetime, quantity: Any, loc: list[Any], mine: bool) -> None:
            if quantity is None or quantity.value is None:
                return
            value = _convert_vital(name, float(quantity.value), quantity)
            if value is None:
                if mine:
                    unit = str(quantity.code or quantity.unit or "")
                    self.refused.append(
                        {
                            "loc": [*loc, "code" if quantity.code else "unit"],
                            "msg": f"{name}: the unit '{unit}' cannot be converted to "
                            f"'{VITAL_UNITS[name]}'; the reading is left out of the case",
                        }
                    )
                return
            if not mine:
                if name == "weight_kg" and at and at - WEIGHT_LOOKBACK <= when <= at:
                    earlier_weights.append((when, value, loc))
                return
            if name not in best or when >= best[name][0]:
                best[name] = (when, value, loc)

        for entry in self.of("Observation"):
            obs = entry.resource
            if obs.status in ("entered-in-error", "cancelled"):
                continue
            mine = every_encounter or _points_to(obs.encounter, encounter_refs)
            codes = _codes(obs.code, LOINC)
            if not mine and not (at is not None and codes & WEIGHT_LOINC):
                continue
            when = _observation_time(obs) or floor
            for code in codes & VITAL_BY_LOINC.keys():
                loc = [*entry.loc, "valueQuantity"]
                offer(VITAL_BY_LOINC[code], when, obs.valueQuantity, loc, mine)
            # Blood pressure panels (85354-9, 55284-4) carry their readings as components.
            for i, component in enumerate(obs.component or []):
                for code in _codes(component.code, LOINC) & VITAL_BY_LOINC.keys():
                    loc = [*entry.loc, "component", i, "valueQuantity"]
                    offer(VITAL_BY_LOINC[code], when, component.valueQuantity, loc, mine)
        if "weight_kg" not in best and earlier_weights:
            best["weight_kg"] = max(earlier_weights, key=lambda item: item[0])
        vitals: dict[str, Any] = {}
        for name, (_, value, loc) in best.items():
            vitals[name] = round(value) if name in INTEGER_VITALS else round(value, 1)
            self.sources[("vitals", name)] = [*loc, "value"]
        return vitals

    def labs(
        self, encounter_refs: set[str], *, every_encounter: bool = False
    ) -> list[dict[str, Any]]:
        """The encounter's labs; with ``every_encounter``, the latest result of each test."""
        labs: list[dict[str, Any]] = []
        observations = self.of("Observation")
        if every_encounter:
            floor = datetime.min.replace(tzinfo=UTC)
            observations = sorted(
                observations,
                key=lambda e: _observation_time(e.resource) or floor,
                reverse=True,
            )
        seen: set[str] = set()
        for entry in observations:
            obs = entry.resource
            if not every_encounter and not _points_to(obs.encounter, encounter_refs):
                continue
            categories = _categories(obs)
            loinc = sorted(c for c in _codes(obs.code, LOINC) if LOINC_CODE.match(c))
            is_vital = bool(set(loinc) & (VITAL_BY_LOINC.keys() | BLOOD_PRESSURE_PANELS))
            if is_vital or obs.status in ("entered-in-error", "cancelled"):
                continue
            if categories and "laboratory" not in categories:
                continue
            lab: dict[str, Any] = {"name": _short(_text(obs.code)) or "unnamed observation"}
            if loinc:
                lab["loinc"] = loinc[0]
            if obs.valueQuantity is not None and obs.valueQuantity.value is not None:
                lab["value"] = float(f"{float(obs.valueQuantity.value):.4g}")
                lab["unit"] = _short(str(obs.valueQuantity.unit or obs.valueQuantity.code or ""))
                if not lab["unit"]:
                    lab["value"] = _format_quantity(obs.valueQuantity)
            elif obs.valueCodeableConcept is not None:
                lab["value"] = _short(_text(obs.valueCodeableConcept), 100)
            elif obs.valueString:
                lab["value"] = _short(str(obs.valueString), 100)
            elif obs.valueInteger is not None:
                lab["value"] = str(obs.valueInteger)
            if not lab.get("value"):
                continue
            test = lab.get("loinc") or lab["name"]
            if every_encounter and test in seen:
                continue
            seen.add(test)
            lab["reference_range"] = self._reference_range(obs)
            flags = [code for concept in obs.interpretation or [] for code in _codes(concept)]
            if flags:
                lab["interpretation"] = _short(sorted(flags)[0], 20)
            codings = [c for c in _codings(obs.code) if c["system"] != LOINC]
            if codings:
                lab["codings"] = codings
            self.sources[("labs", len(labs))] = entry.loc
            labs.append(lab)
        return labs[:200]

    @staticmethod
    def _reference_range(obs: Any) -> str:
        for band in obs.referenceRange or []:
            if band.text:
                return _short(str(band.text))
            low, high = _format_quantity(band.low), _format_quantity(band.high)
            if low and high:
                return _short(f"{low} - {high}")
            if low:
                return _short(f">= {low}")
            if high:
                return _short(f"<= {high}")
        return ""

    def conditions(self, visit: _Visit | None) -> tuple[list[str], list[dict[str, Any]], bool]:
        """The conditions as they stood at the visit: begun (onset, else first recorded) by
        its end and not abated before its start. Today's ``clinicalStatus`` decides only
        where no abatement date says when a condition ended."""
        names: list[str] = []
        coded: list[dict[str, Any]] = []
        pregnant = False
        for entry in self.of("Condition"):
            condition = entry.resource
            if _codes(condition.verificationStatus) & NOT_TRUE:
                continue
            onset = condition.onsetPeriod.start if condition.onsetPeriod else None
            began = _instant(condition.onsetDateTime or onset or condition.recordedDate)
            abatement = condition.abatementPeriod.end if condition.abatementPeriod else None
            ended = _instant(condition.abatementDateTime or abatement)
            status = _codes(condition.clinicalStatus)
            if (visit is None or ended is None) and status and not status & ACTIVE_CONDITION:
                continue
            if visit is not None:
                if began is not None and began > visit.until:
                    continue  # first recorded after the encounter the case is about
                if ended is not None and ended <= visit.start:
                    continue
            name = _short(_text(condition.code))
            if _codes(condition.code, SNOMED) & PREGNANCY_SNOMED:
                pregnant = True
            if name and name not in names and len(names) < 50:
                names.append(name)
                if codings := _codings(condition.code):
                    coded.append({"condition": name, "codings": codings})
        return names, coded, pregnant

    def encounter_diagnoses(self, encounter: _Entry) -> list[str]:
        """What the encounter was for: its reasons (coded, or Conditions it references),
        else its diagnoses, else the Conditions recorded at it."""
        resource = encounter.resource
        found = [_text(r) for r in resource.reasonCode or []]
        referenced = [r for r in resource.reasonReference or []]
        if not any(found) and not referenced:
            referenced = [d.condition for d in resource.diagnosis or [] if d.condition]
        for reference in referenced:
            for entry in self.of("Condition"):
                if _points_to(reference, _refs(entry)):
                    found.append(_text(entry.resource.code))
        if not any(found):
            refs = _refs(encounter)
            for entry in self.of("Condition"):
                if _codes(entry.resource.verificationStatus) & NOT_TRUE:
                    continue
                if _points_to(entry.resource.encounter, refs):
                    found.append(_text(entry.resource.code))
        names: list[str] = []
        for name in found:
            if name and name not in names:
                names.append(name)
        return names

    def medications(self, visit: _Visit | None) -> list[dict[str, Any]]:
        """The medications as they stood at the visit: prescribed (or asserted) by its end,
        and not ended before its start. Today's status decides only where no end date
        (validity period, dosage bounds, effective period) says when it stopped."""
        medications: list[dict[str, Any]] = []
        seen: set[str] = set()
        for resource_type in ("MedicationRequest", "MedicationStatement"):
            for entry in self.of(resource_type):
                item = entry.resource
                if item.status in ("entered-in-error", "cancelled", "not-taken"):
                    continue
                began, ended = _medication_period(item, resource_type)
                current = ("active", "on-hold", "draft")
                if resource_type == "MedicationStatement":
                    current = ("active", "intended", "on-hold")
                if (visit is None or ended is None) and item.status not in current:
                    continue
                if visit is not None:
                    if began is not None and began > visit.until:
                        continue
                    if ended is not None and ended <= visit.start:
                        continue
                concept = self._medication_concept(item)
                name = _short(self._medication_name(item, concept))
                if not name or name in seen:
                    continue
                seen.add(name)
                dosages = item.dosageInstruction if resource_type == "MedicationRequest" else None
                dosage = (dosages or getattr(item, "dosage", None) or [None])[0]
                medication: dict[str, Any] = {"name": name, **self._dosage(dosage)}
                if codings := _codings(concept):
                    medication["codings"] = codings
                medications.append(medication)
        return medications[:100]

    def _medication_concept(self, item: Any) -> Any:
        """The CodeableConcept naming the medication, inline or in a Medication resource."""
        if item.medicationCodeableConcept is not None:
            return item.medicationCodeableConcept
        if item.medicationReference is not None:
            for entry in self.of("Medication"):
                if _points_to(item.medicationReference, _refs(entry)):
                    return entry.resource.code
        return None

    @staticmethod
    def _medication_name(item: Any, concept: Any) -> str:
        if concept is not None:
            return _text(concept)
        reference = item.medicationReference
        return str(reference.display) if reference is not None and reference.display else ""

    @staticmethod
    def _dosage(dosage: Any) -> dict[str, str]:
        if dosage is None:
            return {}
        found: dict[str, str] = {}
        for dose_and_rate in dosage.doseAndRate or []:
            if dose_and_rate.doseQuantity is not None:
                found["dose"] = _short(_format_quantity(dose_and_rate.doseQuantity))
                break
        if dosage.route is not None and _text(dosage.route):
            found["route"] = _short(_text(dosage.route))
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.frequency and repeat.period and repeat.periodUnit:
            period = format(Decimal(repeat.period).normalize(), "f")
            found["frequency"] = f"{repeat.frequency} times per {period} {repeat.periodUnit}"
        elif dosage.asNeededBoolean:
            found["frequency"] = "as needed"
        elif dosage.text:
            found["frequency"] = _short(str(dosage.text))
        return found

    def allergies(self, visit: _Visit | None) -> list[dict[str, Any]]:
        """The allergies as they stood at the visit: recorded by its end; one no longer
        active today counts when a reaction of it (or its last occurrence) fell in the visit."""
        allergies: list[dict[str, Any]] = []
        for entry in self.of("AllergyIntolerance"):
            allergy = entry.resource
            if _codes(allergy.verificationStatus) & NOT_TRUE:
                continue
            if _codes(allergy.code, SNOMED) & NO_KNOWN_ALLERGY_SNOMED:
                continue
            began = _instant(allergy.onsetDateTime or allergy.recordedDate)
            if visit is not None and began is not None and began > visit.until:
                continue  # first recorded after the encounter the case is about
            status = _codes(allergy.clinicalStatus)
            if status and "active" not in status:
                reactions = [_instant(r.onset) for r in allergy.reaction or []]
                reactions.append(_instant(allergy.lastOccurrence))
                # From the visit's day: a reaction dated by its day alone falls on midnight.
                day = visit.start.replace(hour=0, minute=0, second=0) if visit else None
                if (
                    day is None
                    or visit is None
                    or not any(
                        when is not None and day <= when <= visit.until for when in reactions
                    )
                ):
                    continue
            substance = _short(_text(allergy.code))
            if not substance:
                continue
            item: dict[str, Any] = {"substance": substance}
            if allergy.criticality in ("low", "high", "unable-to-assess"):
                item["criticality"] = allergy.criticality
            if codings := _codings(allergy.code):
                item["codings"] = codings
            for reaction in allergy.reaction or []:
                if reaction.manifestation:
                    item["reaction"] = _short(_text(reaction.manifestation[0]))
                if reaction.severity in ("mild", "moderate", "severe"):
                    item["severity"] = reaction.severity
                break
            if "severity" not in item and allergy.criticality == "high":
                item["severity"] = "severe"
            allergies.append(item)
        return allergies[:50]


@dataclass(frozen=True)
class _Visit:
    """When the encounter the case is about took place: items are read as they stood then."""

    start: datetime
    until: datetime  # its end; a day after its start where the end is not given


def _visit(entry: _Entry | None) -> _Visit | None:
    if entry is None or (start := _encounter_start(entry)) is None:
        return None
    period = entry.resource.period
    end = _instant(period.end) if period is not None else None
    return _Visit(start=start, until=end if end and end >= start else start + timedelta(days=1))


def _medication_period(item: Any, resource_type: str) -> tuple[datetime | None, datetime | None]:
    """When a prescription (or statement) began and, where the record says so, ended."""
    if resource_type == "MedicationStatement":
        period = item.effectivePeriod
        began = _instant(period.start if period else item.effectiveDateTime)
        return began or _instant(item.dateAsserted), _instant(period.end) if period else None
    ends = []
    validity = item.dispenseRequest.validityPeriod if item.dispenseRequest else None
    if validity is not None:
        ends.append(_instant(validity.end))
    for dosage in item.dosageInstruction or []:
        repeat = dosage.timing.repeat if dosage.timing is not None else None
        if repeat is not None and repeat.boundsPeriod is not None:
            ends.append(_instant(repeat.boundsPeriod.end))
    known = [end for end in ends if end is not None]
    return _instant(item.authoredOn), max(known) if known else None


def _encounter_summary(encounter: Any, start: datetime | None, reasons: list[str]) -> str:
    """The encounter in words, for the history."""
    kind = _text(encounter.type[0]) if encounter.type else ""
    reason = ", ".join(reasons)
    klass = encounter.class_fhir.display or encounter.class_fhir.code or ""
    parts = [f"{kind or 'Encounter'} ({klass})" if klass else kind or "Encounter"]
    if start is not None:
        parts.append(f"on {start.date().isoformat()}")
    text = " ".join(parts)
    if reason:
        text += f"; reason: {reason}"
    return text + "."


def case_input_from_bundle(bundle: Any, params: CaseParameters | None = None) -> FhirIntake:
    """Map a FHIR R4 Bundle to a validated ``CaseInput`` (raises ``FhirIntakeError``)."""
    found, ignored = _bundle_entries(bundle)
    # Observations are most of a record; only those that can feed the case are validated
    # (and mapped), once the case's encounter is known. The rest are counted as skipped.
    observations = [r for r in found if r.resource_type == "Observation"]
    entries = _validated([r for r in found if r.resource_type != "Observation"])
    assembler = _Assembler(entries, params or CaseParameters())
    params = assembler.parameters()
    patient_entry = assembler.patient()
    patient = patient_entry.resource
    encounter_entry = (
        assembler.case_encounter(params.encounter_id)
        if params.encounter_id
        else assembler.latest_encounter()
    )
    if encounter_entry is not None:
        refs = _refs(encounter_entry)
        wanted = [r for r in observations if _raw_may_matter(r.resource, refs)]
    else:
        wanted = observations  # no encounter: the latest reading of each test is wanted
    assembler.add(_validated(wanted))
    skipped = len(observations) - len(wanted)
    start = _encounter_start(encounter_entry) if encounter_entry else None
    birth = _birth_date(patient.birthDate)
    if birth is None:
        raise _error([*patient_entry.loc, "birthDate"], "is needed for the patient's age")
    on = (start or datetime.now(UTC)).date()
    deceased = _instant(patient.deceasedDateTime)
    if deceased is not None and deceased.date() < on:
        on = deceased.date()
    gender = patient.gender if patient.gender in ("male", "female", "other") else "unknown"
    visit = _visit(encounter_entry)
    conditions, coded_conditions, pregnant = assembler.conditions(visit)

    data: dict[str, Any] = {
        "patient": {
            "age_years": _age_at(birth, on),
            "sex": gender,
            "pregnant": True if pregnant and gender != "male" else None,
        },
        "past_medical_history": conditions,
        "past_medical_history_codings": coded_conditions,
        "medications": assembler.medications(visit),
        "allergies": assembler.allergies(visit),
        "question": params.question.strip() or DEFAULT_QUESTION,
    }
    assembler.sources[("patient", "age_years")] = [*patient_entry.loc, "birthDate"]
    complaint = params.chief_complaint.strip()
    if encounter_entry is not None:
        encounter = encounter_entry.resource
        setting = SETTING_BY_CLASS.get(str(encounter.class_fhir.code or "").upper())
        if setting:
            data["setting"] = setting
        reasons = assembler.encounter_diagnoses(encounter_entry)
        data["history_of_present_illness"] = _encounter_summary(encounter, start, reasons)
        complaint = complaint or _short(", ".join(reasons), 500)
        data["vitals"] = assembler.vitals(refs, start)
        data["labs"] = assembler.labs(refs)
        encounter_ref = f"Encounter/{encounter.id}" if encounter.id else encounter_entry.full_url
    else:
        # No encounter in the bundle: the latest reading of each vital sign and test.
        data["vitals"] = assembler.vitals(set(), None, every_encounter=True)
        data["labs"] = assembler.labs(set(), every_encounter=True)
        encounter_ref = ""
    content = ("past_medical_history", "medications", "allergies", "vitals", "labs")
    if not complaint and not any(data.get(name) for name in content):
        raise EmptyCaseError([{"loc": ["entry"], "msg": EMPTY_CASE}])
    if not complaint and encounter_entry is not None:
        kind = encounter_entry.resource.type
        complaint = _short(f"Review of the patient's record ({_text(kind[0])})" if kind else "")
    data["chief_complaint"] = complaint or "Review of the patient's record"
    if params.priority:
        data["priority"] = params.priority
    if params.external_id:
        data["external_id"] = params.external_id

    try:
        case_input = CaseInput.model_validate(data)
    except ValidationError as exc:
        raise FhirIntakeError(_case_errors(exc, assembler.sources)) from exc
    mapped = Counter(e.resource.get_resource_type() for e in assembler.entries)
    return FhirIntake(
        case_input=case_input,
        encounter=encounter_ref,
        mapped=dict(sorted(mapped.items())),
        ignored=dict(sorted(ignored.items())),
        skipped={"Observation": skipped} if skipped else {},
        refused=assembler.refused,
    )


def _case_errors(exc: ValidationError, sources: dict[tuple[Any, ...], list[Any]]) -> list[dict]:
    """CaseInput errors pointed back at the Bundle where we know the entry they came from."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(err["loc"])
        source = next(
            (sources[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in sources), None
        )
        if source is not None:
            errors.append({"loc": source, "msg": err["msg"]})
        elif loc[:1] in (("question",), ("chief_complaint",), ("priority",), ("external_id",)):
            errors.append({"loc": ["query", *loc], "msg": err["msg"]})
        else:
            errors.append({"loc": ["case", *loc], "msg": err["msg"]})
    return errors

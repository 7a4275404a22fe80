"""A case from a hook's prefetch: its FHIR resources (and the orders being signed) mapped
with the FHIR intake's own rules."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from clinical.ehr import fhir
from clinical.ehr.cds_hooks.errors import HookError, fail
from clinical.ehr.cds_hooks.schemas import HookRequest


def _resources(value: Any) -> list[dict[str, Any]]:
    """The resources in a prefetch value: a resource, or a Bundle of them."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry") or []
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value] if isinstance(value.get("resourceType"), str) else []


def _draft_order_names(hook: HookRequest) -> list[str]:
    names = []
    for resource in _resources(hook.context.draftOrders):
        concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
        name = concept.get("text") or next(
            (c.get("display") for c in concept.get("coding", []) if c.get("display")), ""
        )
        if name:
            names.append(str(name)[:200])
    return names


def case_input_for(hook: HookRequest) -> fhir.FhirIntake:
    """Our case from the hook's prefetch (and the orders being signed)."""
    entries: list[dict[str, Any]] = []
    origins: list[list[Any]] = []  # where each entry sits in the prefetch, for errors
    seen: set[tuple[str, str]] = set()
    for key in sorted(hook.prefetch):
        value = hook.prefetch[key]
        is_bundle = isinstance(value, dict) and value.get("resourceType") == "Bundle"
        for j, resource in enumerate(_resources(value)):
            identity = (str(resource.get("resourceType")), str(resource.get("id", id(resource))))
            if identity in seen:
                continue
            seen.add(identity)
            entries.append({"resource": resource})
            origins.append(
                ["prefetch", key, "entry", j, "resource"] if is_bundle else ["prefetch", key]
            )
    patients = [
        e for e in entries if e["resource"]["resourceType"] == "Patient"
        and e["resource"].get("id") in (None, hook.context.patientId)
    ]  # fmt: skip
    if not patients:
        raise fail(
            412,
            ["prefetch"],
            "Bedside needs the Patient of context.patientId (in the prefetch, or from fhirServer)",
        )
    entries = [e for e in entries if e["resource"]["resourceType"] != "Patient" or e is patients[0]]
    question = ""
    orders = _draft_order_names(hook)
    if orders:
        question = (
            f"The clinician is about to sign: {'; '.join(orders)}. Are these orders safe "
            "and appropriate for this patient, and what is the most likely diagnosis?"
        )[:2000]
    encounter = hook.context.encounterId or ""
    has_encounter = any(
        e["resource"]["resourceType"] == "Encounter" and e["resource"].get("id") == encounter
        for e in entries
    )
    params = fhir.CaseParameters(
        question=question,
        external_id=f"Patient/{hook.context.patientId}",
        # The chart's open encounter, when the prefetch holds it; else the latest.
        encounter_id=encounter if has_encounter else "",
    )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    try:
        try:
            return fhir.case_input_from_bundle(bundle, params)
        except fhir.EmptyCaseError:
            if not orders:
                raise
            # An otherwise empty chart: the orders being signed are what there is to assess.
            complaint = f"Orders to sign: {'; '.join(orders)}"[:500]
            return fhir.case_input_from_bundle(bundle, replace(params, chief_complaint=complaint))
    except fhir.FhirIntakeError as exc:
        # Locations into our synthetic bundle mean nothing to the EHR: name the prefetch.
        errors = []
        for error in exc.errors:
            loc = error["loc"]
            if len(loc) >= 3 and loc[0] == "entry" and isinstance(loc[1], int):
                loc = [*origins[loc[1]], *loc[3:]]
            else:
                loc = ["prefetch", *loc]
            errors.append({"loc": loc, "msg": error["msg"]})
        raise HookError(exc.status, errors) from exc

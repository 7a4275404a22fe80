"""The CDS services Bedside offers, as the discovery endpoint lists them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _prefetch(*, patient: bool = True) -> dict[str, str]:
    templates = {
        "patient": "Patient/{{context.patientId}}",
        "encounters": "Encounter?patient={{context.patientId}}&_sort=-date&_count=5",
        "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
        "vitals": "Observation?patient={{context.patientId}}&category=vital-signs"
        "&_sort=-date&_count=50",
        "labs": "Observation?patient={{context.patientId}}&category=laboratory"
        "&_sort=-date&_count=50",
        "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
        "allergies": "AllergyIntolerance?patient={{context.patientId}}",
    }
    return templates if patient else {}


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str

    @property
    def prefetch(self) -> dict[str, str]:
        return _prefetch()

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": self.prefetch,
            "usageRequirements": "Signed JWT from an EHR whose issuer Bedside knows.",
        }


SERVICES = {
    s.id: s
    for s in (
        Service(
            id="bedside-patient-view",
            hook="patient-view",
            title="Bedside assessment",
            description="A differential, next steps and red flags for the open chart, "
            "reasoned by the hospital's own model, with its confidence.",
        ),
        Service(
            id="bedside-order-sign",
            hook="order-sign",
            title="Bedside check of orders being signed",
            description="Whether the orders about to be signed fit the patient's record, "
            "with a differential, next steps and red flags.",
        ),
    )
}


def discovery() -> dict[str, Any]:
    return {"services": [s.discovery() for s in SERVICES.values()]}

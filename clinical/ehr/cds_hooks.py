"""CDS Hooks 2.0: Bedside as a CDS service for ``patient-view`` and ``order-sign``.

The spec wants an answer in about half a second and has no way to answer later, while an
assessment takes longer. So a hook call queues a case (at most one per EHR, service,
patient and case content: the idempotency records settle repeats and races) and answers
at once with what Bedside already has: the finished assessment as a card, else an info
card that it is running. The EHR's next hook call for the same context gets the result.

The EHR authenticates with a signed JWT (``iss`` from a local allow-list with its public
keys: nothing is fetched from outside). Feedback on a card becomes a ``ClinicianReview``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.actors import actor_for
from audit.models import Action
from audit.services import Actor, record
from bedside import roles
from bedside.vault.encryption import lookup_hash
from clinical import services
from clinical.ehr import fhir
from clinical.models import Case, CaseStatus, CdsCard, CdsTokenUse, ReviewSource
from clinical.reasons import REASON_CODE_SYSTEM, reason_codes, reason_display
from clinical.schemas import ReviewInput
from reasoning import selectors as reasoning_selectors

CARD_NAMESPACE = uuid.UUID("6f1d8c52-3a57-4a3e-9d0e-1c3b2f5a7e90")
SUMMARY_MAX = 140
# The override reasons a card offers: the non-adherence codes that fit a model's answer.
OVERRIDE_REASON_CODES = (
    "cds-not-applicable",
    "patient-ineligible",
    "need-more-info",
    "recipient-disagrees-evidence",
    "does-not-align-latest-evidence",
    "patient-contraindication",
    "action-completed",
    "prefers-alternative",
)
ALGORITHMS = ["ES384", "RS384", "ES256", "RS256", "ES512", "RS512"]
JWT_LEEWAY_S = 30
# Assessments tried for one context (EHR, service, patient, record) before the hook answers
# with the failure instead of queueing another.
ATTEMPTS_PER_CONTEXT = 3


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

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": _prefetch(),
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


# --- request, response and feedback shapes (CDS Hooks 2.0) ---------------------------------


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FhirAuthorization(_Shape):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None


class HookContext(BaseModel):
    # Each hook adds its own context fields; those we read are checked, others kept.
    model_config = ConfigDict(extra="allow")

    userId: str = Field(min_length=1)
    patientId: str = Field(min_length=1, max_length=64)
    encounterId: str | None = None
    draftOrders: dict[str, Any] | None = None


class HookRequest(_Shape):
    hook: str
    hookInstance: str = Field(min_length=1, max_length=64)
    fhirServer: str | None = None
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    extension: dict[str, Any] | None = None


class Coding(_Shape):
    code: str
    system: str | None = None
    display: str | None = None


class Link(_Shape):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autoLaunchable: bool | None = None


class Source(_Shape):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Card(BaseModel):
    model_config = ConfigDict(extra="allow")  # suggestions, selectionBehavior...

    uuid: str | None = None
    summary: str = Field(max_length=SUMMARY_MAX)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None


class HookResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cards: list[Card]
    systemActions: list[dict[str, Any]] | None = None


class OverrideReason(_Shape):
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=2000)


class FeedbackItem(_Shape):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[dict[str, Any]] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: datetime

    @field_validator("acceptedSuggestions")
    @classmethod
    def _suggestions_have_ids(cls, value: list[dict[str, Any]] | None) -> Any:
        if value and not all(isinstance(s.get("id"), str) for s in value):
            raise ValueError("each accepted suggestion needs its id")
        return value


class Feedback(_Shape):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=50)


# --- errors ------------------------------------------------------------------------------


class HookError(Exception):
    def __init__(self, status: int, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.status = status
        self.errors = errors


def _fail(status: int, loc: list[Any], msg: str) -> HookError:
    return HookError(status, [{"loc": loc, "msg": msg}])


def pydantic_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


# --- who is calling: the EHR's JWT ----------------------------------------------------------


def authenticate_ehr(authorization: str, audience: str) -> str:
    """The verified issuer of the request's JWT; raises ``HookError`` (401) otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise _fail(401, ["header", "Authorization"], "a signed JWT is required (Bearer)")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise _fail(401, ["header", "Authorization"], f"not a JWT: {exc}") from exc
    issuer = unverified.get("iss")
    clients: dict[str, Any] = settings.BEDSIDE_CDS_HOOKS_CLIENTS
    if not isinstance(issuer, str) or issuer not in clients:
        raise _fail(401, ["header", "Authorization"], "this JWT's issuer is not allowed")
    keys = [
        k
        for k in clients[issuer].get("jwks", {}).get("keys", [])
        if not header.get("kid") or k.get("kid") in (None, header.get("kid"))
    ]
    last_error: Exception | None = None
    for jwk in keys:
        try:
            claims = jwt.decode(
                token,
                key=jwt.PyJWK(jwk).key,
                algorithms=ALGORITHMS,
                audience=audience,
                issuer=issuer,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
                leeway=JWT_LEEWAY_S,
            )
        except jwt.PyJWTError as exc:
            last_error = exc
            continue
        _use_once(issuer, str(claims["jti"]), int(claims["exp"]))
        return issuer
    reason = str(last_error) if last_error else "no key of this issuer matches the JWT's kid"
    raise _fail(401, ["header", "Authorization"], f"JWT refused: {reason}")


def _use_once(issuer: str, jti: str, exp: int) -> None:
    """Refuse a replayed token: its ``jti`` is remembered until it expires."""
    now = timezone.now()
    CdsTokenUse.objects.filter(expires_at__lt=now - timedelta(seconds=JWT_LEEWAY_S)).delete()
    try:
        with transaction.atomic():
            CdsTokenUse.objects.create(
                issuer=issuer[:255],
                jti=jti[:255],
                expires_at=datetime.fromtimestamp(exp, tz=UTC),
            )
    except IntegrityError as exc:
        raise _fail(401, ["header", "Authorization"], "this JWT was already used (jti)") from exc


def ehr_user(issuer: str) -> Any:
    """The service user an EHR acts as (made on its first call, with the integration role)."""
    user_model = get_user_model()
    username = f"cds:{hashlib.sha256(issuer.encode()).hexdigest()[:16]}"
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
            roles.grant_role(user, roles.INTEGRATION)
            record(
                actor=Actor(label="cds-hooks", role="system"),
                action=Action.CREATE,
                code="role.changed",
                object_type="user",
                object_id=str(user.pk),
                details={"granted": roles.INTEGRATION, "cds_issuer": issuer},
            )
    return user


def ehr_actor(user: Any, issuer: str, request: Any) -> Actor:
    actor = actor_for(user, request)
    return Actor(
        label=f"cds:{issuer}"[:150],
        role=actor.role,
        user_id=actor.user_id,
        source_address=actor.source_address,
        request_id=actor.request_id,
    )


# --- a hook call -----------------------------------------------------------------------------


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
        raise _fail(
            412,
            ["prefetch"],
            "Bedside needs the Patient in the prefetch (it does not query the EHR's FHIR server)",
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
        return fhir.case_input_from_bundle(bundle, params)
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
        raise HookError(400, errors) from exc


def card_uuid(case: Case, hook_instance: str, kind: str) -> str:
    return str(uuid.uuid5(CARD_NAMESPACE, f"{case.id}:{hook_instance}:{kind}"))


def _override_reasons() -> list[dict[str, str]]:
    return [
        {"system": REASON_CODE_SYSTEM, "code": code, "display": reason_display(code)}
        for code in OVERRIDE_REASON_CODES
    ]


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def assessment_card(case: Case, run: Any, link: str, uuid_: str) -> dict[str, Any]:
    assessment = run.assessment or {}
    differential = assessment.get("differential") or []
    red_flags = assessment.get("red_flags") or []
    steps = assessment.get("next_steps") or []
    confidence = run.confidence
    top = differential[0] if differential else {}
    confidence_text = f"confidence {confidence:.2f}" if confidence is not None else "confidence ?"
    summary = f"{top.get('diagnosis', 'Assessment ready')}"
    if top.get("likelihood"):
        summary += f" ({top['likelihood']} likelihood)"
    summary = _shorten(f"Bedside: {summary}, {confidence_text}", SUMMARY_MAX)
    if red_flags:
        indicator = "critical"
    elif confidence is None or confidence < settings.BEDSIDE_CDS_LOW_CONFIDENCE:
        indicator = "warning"
    else:
        indicator = "info"
    lines = ["**Differential**", ""]
    for i, d in enumerate(differential, 1):
        facts = "; ".join(d.get("supporting_facts") or [])
        lines.append(f"{i}. {d.get('diagnosis')} ({d.get('likelihood')}): {facts}".rstrip(": "))
    if steps:
        lines += ["", "**Next steps**", ""]
        lines += [f"- {s.get('action')}" for s in steps]
    if red_flags:
        lines += ["", "**Red flags**", ""]
        lines += [f"- {f.get('flag')}" for f in red_flags]
    method = run.confidence_method or "unknown method"
    lines += [
        "",
        f"Confidence {confidence_text.split(' ', 1)[1]} ({method}). Decision support from "
        f"{run.model_name}: a clinician decides.",
    ]
    return {
        "uuid": uuid_,
        "summary": summary,
        "detail": "\n".join(lines),
        "indicator": indicator,
        "source": {
            "label": _shorten(
                f"Bedside · {run.model_name} ({settings.BEDSIDE_MODEL_VALIDATION_LABEL})", 200
            ),
            "url": link,
        },
        "overrideReasons": _override_reasons(),
        "links": [{"label": "Open the case in Bedside", "url": link, "type": "absolute"}],
    }


def status_card(case: Case, link: str, uuid_: str) -> dict[str, Any]:
    if case.status == CaseStatus.FAILED:
        summary, indicator = "Bedside could not complete its assessment", "warning"
    else:
        summary, indicator = "Bedside assessment running; reopen the chart for the result", "info"
    return {
        "uuid": uuid_,
        "summary": summary,
        "indicator": indicator,
        "source": {"label": "Bedside", "url": link},
        "links": [{"label": "Follow the case in Bedside", "url": link, "type": "absolute"}],
    }


@dataclass(frozen=True)
class HookAnswer:
    case: Case
    cards: list[dict[str, Any]]
    replayed: bool


def hook_call(
    *, service: Service, hook: HookRequest, user: Any, actor: Actor, case_link: Any
) -> HookAnswer:
    """Queue (or find) the case for this context and answer with the cards Bedside has."""
    if hook.hook != service.hook:
        raise _fail(400, ["hook"], f"service {service.id} answers the {service.hook} hook")
    intake = case_input_for(hook)
    content = intake.case_input.model_dump_json()
    content_sha = hashlib.sha256(content.encode()).hexdigest()
    # The patient id is kept only as its keyed hash (the stored key is not encrypted).
    patient = lookup_hash(hook.context.patientId)
    key = f"cds:{service.id}:{patient}:{content_sha}"
    for _ in range(ATTEMPTS_PER_CONTEXT):
        submission = services.case_submit_once(
            case_input=intake.case_input,
            actor=actor,
            submitted_by=user,
            idempotency_key=key,
            body_sha256=content_sha,
            intake="cds-hooks",
        )
        if not (submission.replayed and submission.case.status == CaseStatus.FAILED):
            break
        # The earlier assessment of this context failed: the next call queues a new one
        # (keyed after the failed case, so racing calls still make only one).
        key = f"cds:{service.id}:{patient}:{content_sha}:after:{submission.case.id}"
    case = submission.case
    link = case_link(case)
    run = None
    if case.status == CaseStatus.COMPLETED:
        run = reasoning_selectors.latest_completed_run(case.id)
    kind = "assessment" if run is not None else f"status-{case.status}"
    uuid_ = card_uuid(case, hook.hookInstance, kind)
    card = (
        assessment_card(case, run, link, uuid_)
        if run is not None
        else status_card(case, link, uuid_)
    )
    with transaction.atomic():
        # The case's row first, the audit chain's lock after, in the order a worker claiming
        # this new case takes them. The card's foreign key is checked at commit, after
        # record() holds the chain's lock: with the worker holding the row and waiting for
        # the chain, that was a deadlock (a 503 to the EHR). A worker that finds the row
        # locked here looks again a few seconds later.
        Case.objects.select_for_update(no_key=True).get(pk=case.pk)
        CdsCard.objects.get_or_create(
            uuid=uuid_,
            defaults={
                "case": case,
                "service_id": service.id,
                "hook_instance": hook.hookInstance,
                "kind": "assessment" if run is not None else "status",
                "run_id": run.pk if run is not None else None,
            },
        )
        record(
            actor=actor,
            action=Action.EXECUTE,
            code="cds.hook_answered",
            case_id=case.id,
            details={
                "service": service.id,
                "card": uuid_,
                "kind": kind,
                "replayed": submission.replayed,
            },
        )
    return HookAnswer(case=case, cards=[card], replayed=submission.replayed)


# --- feedback ------------------------------------------------------------------------------


def feedback_record(
    *, service: Service, feedback: Feedback, user: Any, actor: Actor
) -> list[dict[str, Any]]:
    """Each accepted or overridden card of ours becomes a ClinicianReview of its case.

    An override without a reason is audited but not a review (Bedside's reviews carry a
    reason); feedback on a status card is audited only (there was no answer to judge).
    """
    cards = {
        c.uuid: c
        for c in CdsCard.objects.select_related("case").filter(
            uuid__in=[item.card for item in feedback.feedback], service_id=service.id
        )
    }
    errors = []
    for i, item in enumerate(feedback.feedback):
        card = cards.get(item.card)
        if card is None or card.case.submitted_by_id != user.pk:
            errors.append({"loc": ["feedback", i, "card"], "msg": "not a card of this service"})
        reason = item.overrideReason.reason if item.overrideReason else None
        if reason is not None and (
            reason.system not in (None, REASON_CODE_SYSTEM) or reason.code not in reason_codes()
        ):
            errors.append(
                {
                    "loc": ["feedback", i, "overrideReason", "reason"],
                    "msg": f"must be one of the card's overrideReasons ({REASON_CODE_SYSTEM})",
                }
            )
    if errors:
        raise HookError(400, errors)
    outcomes = []
    for item in feedback.feedback:
        card = cards[item.card]
        reason = item.overrideReason.reason if item.overrideReason else None
        comment = (item.overrideReason.userComment or "") if item.overrideReason else ""
        if card.kind != "assessment" or (item.outcome == "overridden" and reason is None):
            record(
                actor=actor,
                action=Action.EXECUTE,
                code="cds.feedback_noted",
                case_id=card.case_id,
                details={"service": service.id, "card": card.uuid, "outcome": item.outcome},
            )
            outcomes.append({"card": card.uuid, "review": None})
            continue
        if item.outcome == "accepted":
            review = ReviewInput(decision="accept")
        else:
            assert reason is not None
            review = ReviewInput(
                decision="reject",
                reason_code=reason.code,
                reason_text=comment or reason_display(reason.code),
            )
        try:
            saved = services.review_record(
                case=card.case,
                review=review,
                actor=actor,
                reviewer=user,
                source=ReviewSource.CDS_HOOKS,
                card_uuid=card.uuid,
                hook_instance=card.hook_instance,
            )
        except services.ReviewNotPossible:
            outcomes.append({"card": card.uuid, "review": None})
            continue
        outcomes.append({"card": card.uuid, "review": saved.pk})
    return outcomes

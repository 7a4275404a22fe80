"""A hook call (queue or find the case for its context, answer with the cards Bedside has)
and feedback on a card (it becomes a clinician's review)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from audit.models import Action
from audit.services import Actor, record
from bedside.accounts import selectors as accounts_selectors
from bedside.accounts import services as accounts_services
from bedside.vault.encryption import lookup_hash
from clinical import services as case_services
from clinical.ehr.cds_hooks.cards import assessment_card, card_uuid, status_card
from clinical.ehr.cds_hooks.discovery import Service
from clinical.ehr.cds_hooks.errors import HookError, fail
from clinical.ehr.cds_hooks.fetch import prefetch_complete
from clinical.ehr.cds_hooks.prefetch import case_input_for
from clinical.ehr.cds_hooks.schemas import Feedback, HookRequest
from clinical.ehr.writeback import writeback_remember
from clinical.models import Case, CaseStatus, CdsCard, CdsFeedback, ReviewSource
from clinical.reasons import REASON_CODE_SYSTEM, reason_codes, reason_display
from clinical.schemas import ReviewInput
from reasoning import selectors as reasoning_selectors

# Assessments tried for one context (EHR, service, patient, record) before the hook answers
# with the failure instead of queueing another.
ATTEMPTS_PER_CONTEXT = 3


@dataclass(frozen=True)
class HookAnswer:
    case: Case
    cards: list[dict[str, Any]]
    replayed: bool


def case_owner(*, issuer: str, ehr_user_id: str, ehr_user: Any, actor: Actor) -> Any:
    """Who a hook call's case belongs to: the clinician the EHR's user (``context.userId``)
    is linked to, so the card's link opens for them; else the EHR's own service user. An
    EHR user seen for the first time gets a pending link for an admin to attach."""
    accounts_services.ehr_user_link_seen(issuer=issuer, ehr_user_id=ehr_user_id, actor=actor)
    clinician = accounts_selectors.linked_clinician(issuer=issuer, ehr_user_id=ehr_user_id)
    return clinician if clinician is not None else ehr_user


def hook_call(
    *,
    service: Service,
    hook: HookRequest,
    user: Any,
    issuer: str,
    actor: Actor,
    case_link: Any,
) -> HookAnswer:
    """Queue (or find) the case for this context and answer with the cards Bedside has.

    ``user`` is the EHR's service user; the case is owned by ``case_owner``."""
    if hook.hook != service.hook:
        raise fail(400, ["hook"], f"service {service.id} answers the {service.hook} hook")
    hook, fetched = prefetch_complete(hook, service.prefetch)
    intake = case_input_for(hook)
    owner = case_owner(issuer=issuer, ehr_user_id=hook.context.userId, ehr_user=user, actor=actor)
    content = intake.case_input.model_dump_json()
    content_sha = hashlib.sha256(content.encode()).hexdigest()
    # The patient id is kept only as its keyed hash (the stored key is not encrypted).
    patient = lookup_hash(hook.context.patientId)
    key = f"cds:{service.id}:{patient}:{content_sha}"
    for _ in range(ATTEMPTS_PER_CONTEXT):
        submission = case_services.case_submit_once(
            case_input=intake.case_input,
            actor=actor,
            submitted_by=owner,
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
        locked = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
        # Under the row's lock: a worker finishing the case commits before (nothing to
        # write back, the card or the next call shows it) or after (it finds this).
        writes_back = writeback_remember(case=locked, hook=hook)
        CdsCard.objects.get_or_create(
            uuid=uuid_,
            defaults={
                "case": case,
                "service_id": service.id,
                "hook_instance": hook.hookInstance,
                "kind": "assessment" if run is not None else "status",
                "run_id": run.pk if run is not None else None,
                "issuer": issuer[:255],
                "ehr_user_id": hook.context.userId[:255],
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
                "owner": "ehr" if owner.pk == user.pk else "linked clinician",
                # Provenance of what the EHR's FHIR server gave: the queries (templates, no
                # patient id) and how many resources each returned.
                "fetched_from_fhir_server": [f.as_details() for f in fetched],
                "writes_back": writes_back,
            },
        )
    return HookAnswer(case=case, cards=[card], replayed=submission.replayed)


# --- feedback ------------------------------------------------------------------------------


def _card_of_this_ehr(card: CdsCard | None, *, issuer: str, user: Any) -> bool:
    if card is None:
        return False
    if card.issuer:
        return card.issuer == issuer[:255]
    return bool(card.case.submitted_by_id == user.pk)  # a card from before cards named the EHR


def _reviewer(card: CdsCard, ehr_user: Any) -> Any:
    """The clinician the card's EHR user is linked to now; else the EHR's service user."""
    if card.issuer and card.ehr_user_id:
        clinician = accounts_selectors.linked_clinician(
            issuer=card.issuer, ehr_user_id=card.ehr_user_id
        )
        if clinician is not None:
            return clinician
    return ehr_user


def feedback_record(
    *, service: Service, feedback: Feedback, user: Any, issuer: str, actor: Actor
) -> list[dict[str, Any]]:
    """Each accepted or overridden card of ours becomes a ClinicianReview of its case,
    credited to the clinician the card's EHR user (``context.userId``) is linked to.

    An override without a reason is audited but not a review (Bedside's reviews carry a
    reason); feedback on a status card is audited only (there was no answer to judge). The
    same outcome for the same card again (an EHR's retry) records nothing new and answers
    as the first time did.
    """
    cards = {
        c.uuid: c
        for c in CdsCard.objects.select_related("case").filter(
            uuid__in=[item.card for item in feedback.feedback], service_id=service.id
        )
    }
    errors = []
    for i, item in enumerate(feedback.feedback):
        if not _card_of_this_ehr(cards.get(item.card), issuer=issuer, user=user):
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
    outcomes: list[dict[str, Any]] = []
    for item in feedback.feedback:
        card = cards[item.card]
        review_id, replayed = _feedback_once(
            card=card, item=item, service=service, user=user, actor=actor
        )
        outcome: dict[str, Any] = {"card": card.uuid, "review": review_id}
        if replayed:
            outcome["replayed"] = True
        outcomes.append(outcome)
    return outcomes


def _feedback_once(
    *, card: CdsCard, item: Any, service: Service, user: Any, actor: Actor
) -> tuple[int | None, bool]:
    """Record one outcome for one card at most once: (the review's id or None, replayed)."""
    earlier = CdsFeedback.objects.filter(card=card, outcome=item.outcome).first()
    if earlier is not None:
        return earlier.review_id, True
    try:
        with transaction.atomic():
            # The unique (card, outcome) row first: a racing retry waits on it, then finds it.
            noted = CdsFeedback.objects.create(card=card, outcome=item.outcome)
            noted.review_id = _feedback_review(
                card=card, item=item, service=service, user=user, actor=actor
            )
            if noted.review_id is not None:
                noted.save(update_fields=["review"])
    except IntegrityError:
        earlier = CdsFeedback.objects.filter(card=card, outcome=item.outcome).first()
        if earlier is None:
            raise
        return earlier.review_id, True
    return noted.review_id, False


def _feedback_review(
    *, card: CdsCard, item: Any, service: Service, user: Any, actor: Actor
) -> int | None:
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
        return None
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
        saved = case_services.review_record(
            case=card.case,
            review=review,
            actor=actor,
            reviewer=_reviewer(card, user),
            source=ReviewSource.CDS_HOOKS,
            card_uuid=card.uuid,
            hook_instance=card.hook_instance,
        )
    except case_services.ReviewNotPossible:
        return None
    return int(saved.pk)

"""CDS Hooks 2.0: Bedside as a CDS service for ``patient-view`` and ``order-sign``.

The spec wants an answer in about half a second and has no way to answer later, while an
assessment takes longer. So a hook call queues a case (at most one per EHR, service,
patient and case content: the idempotency records settle repeats and races) and answers
at once with what Bedside already has: the finished assessment as a card, else an info
card that it is running. The EHR's next hook call for the same context gets the result.

The EHR authenticates with a signed JWT (``iss`` a registered EHR client, its public keys
given or fetched from an allowed JWKS URL: ``bedside.accounts.ehr_clients``). The EHR's
user (``context.userId``) is linked to a Bedside clinician, who owns the case; feedback on
a card becomes that clinician's ``ClinicianReview``, once per card and outcome.

One module per concern: ``discovery`` (the services offered), ``schemas`` (the wire
shapes), ``auth`` (the EHR's JWT), ``users`` (who an EHR acts as), ``fetch`` (what the
prefetch lacks, from the EHR's FHIR server), ``prefetch`` (the case from the prefetch),
``cards``, ``services`` (a hook call, feedback) and ``views``. The
names callers use are re-exported here.
"""

from __future__ import annotations

from clinical.ehr.cds_hooks.auth import authenticate_ehr
from clinical.ehr.cds_hooks.cards import assessment_card, card_uuid, status_card
from clinical.ehr.cds_hooks.discovery import SERVICES, Service, discovery
from clinical.ehr.cds_hooks.errors import HookError, pydantic_errors
from clinical.ehr.cds_hooks.prefetch import case_input_for
from clinical.ehr.cds_hooks.schemas import (
    SUMMARY_MAX,
    Card,
    Feedback,
    FeedbackItem,
    HookContext,
    HookRequest,
    HookResponse,
)
from clinical.ehr.cds_hooks.services import HookAnswer, feedback_record, hook_call
from clinical.ehr.cds_hooks.users import ehr_actor, ehr_user

__all__ = [
    "SERVICES",
    "SUMMARY_MAX",
    "Card",
    "Feedback",
    "FeedbackItem",
    "HookAnswer",
    "HookContext",
    "HookError",
    "HookRequest",
    "HookResponse",
    "Service",
    "assessment_card",
    "authenticate_ehr",
    "card_uuid",
    "case_input_for",
    "discovery",
    "ehr_actor",
    "ehr_user",
    "feedback_record",
    "hook_call",
    "pydantic_errors",
    "status_card",
]

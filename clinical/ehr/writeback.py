"""Answers that reach the EHR: when a CDS Hooks call's ``fhirAuthorization`` grants write
access, the case's answer is written to the EHR's ``fhirServer`` as a FHIR ``Communication``
once the case finishes, instead of waiting for the next hook call.

The server, the token and its expiry are kept for that case (token and patient id
encrypted) only until the Communication is sent, the attempts run out or the token
expires. Each attempt is audited (``ehr.writeback_sent`` / ``ehr.writeback_failed``, with
the status code and attempt, never the token); a token past its expiry is not used
(``ehr.writeback_skipped``). The host rule is the prefetch fetch's: loopback, private
ranges, or a host in ``BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS``; no redirects.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from audit.models import Action, Outcome
from audit.services import SYSTEM, record
from bedside.hosts import FHIR_ALLOW_LIST, EndpointRefused, check_model_endpoint
from clinical.ehr.delivery import Delivery, attempt_settled
from clinical.models import Case, CaseStatus, CdsWriteback
from reasoning import selectors as reasoning_selectors
from reasoning.confidence import band_of
from reasoning.red_flags import credible_red_flags
from reasoning.schemas import CheckedAssessment

if TYPE_CHECKING:  # the hook package imports this module (a hook call remembers the token)
    from clinical.ehr.cds_hooks.schemas import HookRequest

# A scope that lets Bedside create a Communication: SMART v1 ``write`` or ``*``, or SMART v2
# permission letters that include ``c`` (create), on Communication or on every type, for a
# user, a patient or the system; a v2 scope may carry a query after ``?``.
_WRITE_SCOPE = re.compile(
    r"^(?:user|patient|system)/(?:Communication|\*)\.(?P<perm>write|\*|[cruds]+)(?:\?.*)?$"
)
# Communications of one announcement share an identifier, so the EHR can drop a retry's twin.
WRITEBACK_NAMESPACE = uuid.UUID("0b7f3c9e-6a0d-4f0e-8f51-2d8a9c4e7b13")
AI_NOTE = (
    "AI-generated clinical decision support from Bedside, not a clinician's judgement: "
    "a clinician decides."
)


def grants_write(scope: str) -> bool:
    """Whether a ``fhirAuthorization.scope`` lets Bedside write a Communication."""
    for item in scope.split():
        found = _WRITE_SCOPE.match(item)
        if found and (found["perm"] in ("write", "*") or "c" in found["perm"]):
            return True
    return False


def writeback_remember(*, case: Case, hook: HookRequest) -> bool:
    """Keep where and with what to write this case's answer back, when the hook call's token
    grants write access; the latest such call for a case wins. Called with the case's row
    locked, so a finish commits either before (nothing to remember) or after (it finds
    this)."""
    auth = hook.fhirAuthorization
    if not hook.fhirServer or auth is None or not grants_write(auth.scope):
        return False
    if case.status in (CaseStatus.COMPLETED, CaseStatus.FAILED):
        return False  # the card this call answers with already holds the outcome
    CdsWriteback.objects.update_or_create(
        case=case,
        defaults={
            "fhir_server": hook.fhirServer,
            "access_token": auth.access_token,
            "patient_id": hook.context.patientId,
            "expires_at": timezone.now() + timedelta(seconds=max(0, auth.expires_in)),
        },
    )
    return True


def writeback_pending(case_id: str) -> bool:
    return CdsWriteback.objects.filter(case_id=case_id).exists()


def case_page_url(case: Case) -> str:
    return f"{settings.BEDSIDE_PUBLIC_URL.rstrip('/')}{reverse('case-page', args=[case.id])}"


def summary_text(case: Case) -> str:
    """A short plain-text account of the finished case: the checked answer's top
    differential, its red flags and confidence band; or that it failed, and why."""
    run = (
        reasoning_selectors.latest_completed_run(case.id)
        if case.status == CaseStatus.COMPLETED
        else None
    )
    if run is None:
        reason = case.status_detail or "no reason recorded"
        return f"Bedside could not complete its assessment: {reason}"
    checked = CheckedAssessment.stored(run.assessment)
    assessment = checked.model_dump(mode="json") if checked else {}
    top = [
        f"{d.get('diagnosis')} ({d.get('likelihood')})"
        if d.get("likelihood")
        else str(d.get("diagnosis"))
        for d in (assessment.get("differential") or [])[:3]
    ]
    flags = [str(f.get("flag")) for f in credible_red_flags(assessment.get("red_flags") or [])]
    band = band_of(run.confidence)
    parts = [
        "Bedside assessment. Differential: " + ("; ".join(top) or "none given") + ".",
        "Red flags: " + ("; ".join(flags) or "none") + ".",
        f"Confidence: {band.value if band else 'unknown'}"
        + (f" ({run.confidence:.2f})." if run.confidence is not None else "."),
    ]
    return " ".join(" ".join(p.split()) for p in parts)


def communication(case: Case, patient_id: str) -> dict[str, Any]:
    link = case_page_url(case)
    finished = case.finished_at.isoformat() if case.finished_at else ""
    return {
        "resourceType": "Communication",
        "identifier": [
            {
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:uuid:{uuid.uuid5(WRITEBACK_NAMESPACE, f'{case.id}:{finished}')}",
            }
        ],
        "status": "completed",
        "category": [{"text": "AI-generated clinical decision support"}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "sent": timezone.now().isoformat(),
        "sender": {"display": "Bedside (AI decision support)"},
        "about": [{"display": f"Bedside case {case.id}", "identifier": {"value": str(case.id)}}],
        "payload": [
            {"contentString": f"{summary_text(case)} Open the case: {link}"},
            {"contentAttachment": {"url": link, "title": "Open the case in Bedside"}},
        ],
        "note": [{"text": AI_NOTE}],
    }


def writeback_deliver(*, case_id: str, attempt: int) -> Delivery:
    """One attempt to POST the finished case's Communication, audited; says whether (and
    when) to try again. Nothing to do (no write access, already sent) is not an attempt."""
    target = CdsWriteback.objects.select_related("case").filter(case_id=case_id).first()
    if target is None or target.case.status not in (CaseStatus.COMPLETED, CaseStatus.FAILED):
        return Delivery(delivered=False, retry_in=None)
    case = target.case
    details: dict[str, Any] = {"attempt": attempt, "status": case.status}
    if target.expires_at <= timezone.now():
        record(
            actor=SYSTEM,
            action=Action.EXECUTE,
            code="ehr.writeback_skipped",
            outcome=Outcome.FAILURE,
            case_id=case.id,
            details=details | {"reason": "the EHR's access token expired"},
        )
        target.delete()
        return Delivery(delivered=False, retry_in=None)
    error = ""
    try:
        # Checked at every attempt: what a host name resolves to can change.
        check_model_endpoint(
            target.fhir_server,
            allowed_hosts=settings.BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS,
            setting=FHIR_ALLOW_LIST,
        )
        remaining = (target.expires_at - timezone.now()).total_seconds()
        timeout = max(0.1, min(settings.BEDSIDE_FHIR_WRITEBACK_TIMEOUT_S, remaining))
        # No redirects (they could lead the token off the allowed host), no proxy.
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(
                f"{target.fhir_server.rstrip('/')}/Communication",
                json=communication(case, target.patient_id),
                headers={
                    "Authorization": f"Bearer {target.access_token}",
                    "Content-Type": "application/fhir+json",
                    "Accept": "application/fhir+json",
                },
            )
        details["status_code"] = response.status_code
        delivered = 200 <= response.status_code < 300
        if not delivered:
            error = f"HTTP {response.status_code}"
    except EndpointRefused:
        delivered, error = False, "refused"
    except httpx.HTTPError as exc:
        delivered, error = False, type(exc).__name__
    outcome, details = attempt_settled(
        delivered=delivered,
        error=error,
        attempt=attempt,
        max_attempts=settings.BEDSIDE_FHIR_WRITEBACK_MAX_ATTEMPTS,
        backoff_base_s=settings.BEDSIDE_FHIR_WRITEBACK_BACKOFF_BASE_S,
        final_errors=("refused",),
        details=details,
    )
    record(
        actor=SYSTEM,
        action=Action.EXECUTE,
        code="ehr.writeback_sent" if delivered else "ehr.writeback_failed",
        outcome=Outcome.SUCCESS if delivered else Outcome.FAILURE,
        case_id=case.id,
        details=details,
    )
    if outcome.retry_in is None:
        target.delete()  # the token is kept no longer than it is needed
    return outcome

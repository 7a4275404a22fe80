"""Completion callbacks: a signed POST to an integration key's callback URL when one of
its cases completes or fails.

The body names the case and its status only (no patient data: the integrator fetches the
case with its key). It is signed with HMAC-SHA256 keyed by the SHA-256 of the integrator's
API key, which the integrator can compute and Bedside already stores, so no second secret
is kept: ``X-Bedside-Signature: t=<unix time>,v1=<hex HMAC of "<t>.<body>">``. Failed
deliveries are retried with a doubling backoff; every attempt is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from audit.models import Action, Outcome
from audit.services import SYSTEM, record
from bedside.accounts.models import ApiKey
from clinical.models import Case, CaseStatus

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Bedside-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _callback_key(case: Case) -> ApiKey | None:
    key = ApiKey.objects.filter(user_id=case.submitted_by_id).first()
    if key is None or not key.callback_url or key.revoked_at is not None:
        return None
    return key


def callback_key_for(case_id: str) -> ApiKey | None:
    """The key whose callback a finished case is announced to; None when there is none."""
    case = Case.objects.filter(id=case_id).first()
    if case is None or case.status not in (CaseStatus.COMPLETED, CaseStatus.FAILED):
        return None
    return _callback_key(case)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    retry_in: int | None  # seconds until the next attempt; None: no further attempt


def _backoff(attempt: int) -> int:
    base = settings.BEDSIDE_CALLBACK_BACKOFF_BASE_S
    return int(min(base * 2 ** (attempt - 1), 3600))


def callback_deliver(*, case_id: str, attempt: int) -> Delivery:
    """One delivery attempt, audited; says whether (and when) to try again."""
    from bedside.hosts import CALLBACK_ALLOW_LIST, EndpointRefused, check_model_endpoint

    case = Case.objects.filter(id=case_id).first()
    key = _callback_key(case) if case is not None else None
    if case is None or key is None:
        return Delivery(delivered=False, retry_in=None)
    event = f"case.{case.status}"
    body = json.dumps(
        {
            "event": event,
            "case": {
                "id": str(case.id),
                "external_id": case.external_id,
                "status": case.status,
                "finished_at": case.finished_at.isoformat() if case.finished_at else None,
                "links": {"self": f"/api/v1/cases/{case.id}/"},
            },
        },
        separators=(",", ":"),
    ).encode()
    delivery_id = str(uuid.uuid4())
    details: dict[str, Any] = {"attempt": attempt, "event": event, "delivery": delivery_id}
    error = ""
    try:
        # Checked at every attempt: what a host name resolves to can change.
        check_model_endpoint(
            key.callback_url,
            allowed_hosts=settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS,
            setting=CALLBACK_ALLOW_LIST,
        )
        response = httpx.post(
            key.callback_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Bedside-Event": event,
                "X-Bedside-Delivery": delivery_id,
                SIGNATURE_HEADER: signature(key.key_hash, int(time.time()), body),
            },
            timeout=settings.BEDSIDE_CALLBACK_TIMEOUT_S,
            follow_redirects=False,
        )
        details["status_code"] = response.status_code
        delivered = 200 <= response.status_code < 300
        if not delivered:
            error = f"HTTP {response.status_code}"
    except EndpointRefused:
        delivered, error = False, "refused"
    except httpx.HTTPError as exc:
        delivered, error = False, type(exc).__name__
    last = attempt >= settings.BEDSIDE_CALLBACK_MAX_ATTEMPTS or error == "refused"
    if error:
        details["error"] = error
    record(
        actor=SYSTEM,
        action=Action.EXECUTE,
        code="callback.delivered" if delivered else "callback.failed",
        outcome=Outcome.SUCCESS if delivered else Outcome.FAILURE,
        case_id=case.id,
        object_type="api_key",
        object_id=str(key.pk),
        details=details | ({"gave_up": True} if not delivered and last else {}),
    )
    if delivered or last:
        return Delivery(delivered=delivered, retry_in=None)
    return Delivery(delivered=False, retry_in=_backoff(attempt))

"""Completion callbacks: a signed POST to an integration key's callback URL when one of
its cases completes or fails.

The body names the case and its status only (no patient data: the integrator fetches the
case with its key at ``links.self``). It is signed with HMAC-SHA256 keyed by the key's
callback secret, shown once at issue (or rotation) and stored encrypted, so that nothing a
reader of the database sees can forge a callback: ``X-Bedside-Signature: t=<unix
time>,v1=<hex HMAC of "<t>.<body>">``. ``X-Bedside-Delivery`` is the same on every retry
of one announcement, so the receiver can drop duplicates. Failed deliveries are retried
with a doubling backoff; every attempt is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from audit.models import Action, Outcome
from audit.services import SYSTEM, record
from bedside.accounts.models import ApiKey
from bedside.hosts import EndpointRefused, callback_address
from clinical.ehr.delivery import Delivery, attempt_settled
from clinical.models import Case, CaseStatus
from clinical.schemas import CaseFinishedEvent

logger = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Bedside-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# Delivery ids are UUIDv5 in this namespace, of the case and the finish they announce.
DELIVERY_NAMESPACE = uuid.UUID("5d0c8d0e-3b1f-4f57-9a53-6f3f0c2b8e11")


def delivery_id(case: Case) -> str:
    """One id per announcement: the same on each retry, another for a later finish (a
    re-run of a failed case)."""
    finished = case.finished_at.isoformat() if case.finished_at else ""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{case.id}:{case.status}:{finished}"))


def case_url(case: Case) -> str:
    return f"{settings.BEDSIDE_PUBLIC_URL.rstrip('/')}/api/v1/cases/{case.id}/"


def _pinned(url: str, address: str) -> tuple[str, dict[str, Any]]:
    """The URL with its host replaced by the address that was checked (so that no second
    DNS lookup happens), and for https the name to send and verify the certificate by."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), extensions


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


class NoCallbackSecret(Exception):
    """The key has a callback URL but no secret to sign with."""


def callback_deliver(*, case_id: str, attempt: int) -> Delivery:
    """One delivery attempt, audited; says whether (and when) to try again."""
    case = Case.objects.filter(id=case_id).first()
    key = _callback_key(case) if case is not None else None
    if case is None or key is None:
        return Delivery(delivered=False, retry_in=None)
    event = f"case.{case.status}"
    payload = CaseFinishedEvent.model_validate(
        {
            "event": event,
            "case": {
                "id": case.id,
                "external_id": case.external_id,
                "status": case.status,
                "finished_at": case.finished_at,
                "links": {"self": case_url(case)},
            },
        }
    )
    body = json.dumps(payload.model_dump(mode="json"), separators=(",", ":")).encode()
    delivery = delivery_id(case)
    details: dict[str, Any] = {"attempt": attempt, "event": event, "delivery": delivery}
    error = ""
    try:
        if not key.callback_secret:
            # A key given its callback URL before callback secrets existed (or in the admin):
            # nothing to sign with; `manage.py rotate_callback_secret` makes one.
            raise NoCallbackSecret
        # Checked at every attempt: what a host name resolves to can change.
        address = callback_address(
            key.callback_url, allowed_hosts=settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS
        )
        url, pinned = _pinned(key.callback_url, address)
        # No redirects (they would lead past the check), no proxy from the environment.
        with httpx.Client(
            timeout=settings.BEDSIDE_CALLBACK_TIMEOUT_S, follow_redirects=False, trust_env=False
        ) as client:
            response = client.post(
                url,
                content=body,
                extensions=pinned,
                headers={
                    "Host": urlsplit(key.callback_url).netloc.rsplit("@", 1)[-1],
                    "Content-Type": "application/json",
                    "X-Bedside-Event": event,
                    "X-Bedside-Delivery": delivery,
                    SIGNATURE_HEADER: signature(key.callback_secret, int(time.time()), body),
                },
            )
        details["status_code"] = response.status_code
        delivered = 200 <= response.status_code < 300
        if not delivered:
            error = f"HTTP {response.status_code}"
    except EndpointRefused:
        delivered, error = False, "refused"
    except NoCallbackSecret:
        delivered, error = False, "no callback secret"
    except httpx.HTTPError as exc:
        delivered, error = False, type(exc).__name__
    outcome, details = attempt_settled(
        delivered=delivered,
        error=error,
        attempt=attempt,
        max_attempts=settings.BEDSIDE_CALLBACK_MAX_ATTEMPTS,
        backoff_base_s=settings.BEDSIDE_CALLBACK_BACKOFF_BASE_S,
        final_errors=("refused", "no callback secret"),
        details=details,
    )
    record(
        actor=SYSTEM,
        action=Action.EXECUTE,
        code="callback.delivered" if delivered else "callback.failed",
        outcome=Outcome.SUCCESS if delivered else Outcome.FAILURE,
        case_id=case.id,
        object_type="api_key",
        object_id=str(key.pk),
        details=details,
    )
    return outcome

"""Sign-in with a lockout: after ``BEDSIDE_LOGIN_MAX_FAILURES`` failed attempts for one
username within ``BEDSIDE_LOGIN_LOCKOUT_S``, that username is refused for the same period
after the last failure, whatever password is given.

The failures are counted from the audit chain itself (the ``auth.failed`` events that every
failed password sign-in writes, see ``bedside/accounts/access_audit.py``, reset by a
``login.succeeded``), so every web process sees the same count and there is no second
record of sign-in attempts to keep consistent with the audit trail.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import Action, AuditEvent, Outcome
from audit.services import Actor, record

FAILED = "auth.failed"  # written by the user_login_failed signal (bedside/accounts/access_audit.py)
SUCCEEDED = "login.succeeded"
REFUSED = "login.refused"  # a locked username tried again; not counted as a failure


def _key(username: str) -> str:
    return username.strip().lower()[:64]


def _actor(source_address: str | None) -> Actor:
    return Actor(label="anonymous", role="none", source_address=source_address or None)


def login_locked_until(*, username: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the lockout of this username ends, or None when it may try to sign in."""
    now = now or timezone.now()
    window = dt.timedelta(seconds=settings.BEDSIDE_LOGIN_LOCKOUT_S)
    limit = settings.BEDSIDE_LOGIN_MAX_FAILURES
    # The newest attempts: a lock needs `limit` failures in a row (no success between),
    # all within one period, the last of them less than a period ago.
    latest = list(
        AuditEvent.objects.filter(
            object_type="user",
            object_id__iexact=_key(username),
            code__in=(FAILED, SUCCEEDED),
            recorded_at__gte=now - 2 * window,
            recorded_at__lte=now,
        )
        .order_by("-id")
        .values_list("code", "recorded_at")[:limit]
    )
    if len(latest) < limit or any(code != FAILED for code, _ in latest):
        return None
    last, first = latest[0][1], latest[-1][1]
    until = last + window
    return until if last - first <= window and until > now else None


def login_success_record(*, username: str, source_address: str | None) -> None:
    """A successful sign-in; failures are recorded by the ``user_login_failed`` signal."""
    record(
        actor=_actor(source_address),
        action=Action.EXECUTE,
        code=SUCCEEDED,
        outcome=Outcome.SUCCESS,
        object_type="user",
        object_id=_key(username),
    )


def login_refusal_record(*, username: str, source_address: str | None) -> None:
    record(
        actor=_actor(source_address),
        action=Action.EXECUTE,
        code=REFUSED,
        outcome=Outcome.FAILURE,
        object_type="user",
        object_id=_key(username),
        details={"reason": "locked"},
    )


def locked_message(until: dt.datetime) -> str:
    minutes = max(1, round(settings.BEDSIDE_LOGIN_LOCKOUT_S / 60))
    return (
        f"Too many failed sign-ins for this username. Signing in with it is paused until "
        f"{until:%H:%M} UTC ({minutes} minutes after the last failed attempt). "
        "Ask an administrator if you need access sooner."
    )


class SignInForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        source = self.request.META.get("REMOTE_ADDR") if self.request else None
        until = login_locked_until(username=username) if username else None
        if until is not None:
            login_refusal_record(username=username, source_address=source)
            raise ValidationError(locked_message(until), code="locked")
        try:
            cleaned = super().clean()
        except ValidationError as exc:
            if exc.code == "invalid_login":  # the failure's audit event is already written
                until = login_locked_until(username=username)
                if until is not None:
                    raise ValidationError(locked_message(until), code="locked") from exc
            raise
        if self.user_cache is not None:
            login_success_record(username=username, source_address=source)
        return cleaned


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm
    # A form page: LoginView would also take PUT as a sign-in attempt.
    http_method_names = ["get", "head", "post", "options"]

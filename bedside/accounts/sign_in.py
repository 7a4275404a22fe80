"""Sign-in with a lockout: after ``BEDSIDE_LOGIN_MAX_FAILURES`` failed attempts for one
username within ``BEDSIDE_LOGIN_LOCKOUT_S``, that username is refused for the same period
after the last failure, whatever password is given.

The failures are counted from the audit chain itself (the ``auth.failed`` events that every
failed password sign-in writes, see ``bedside/accounts/access_audit.py``, reset by a
``login.succeeded``), so every web process sees the same count and there is no second
record of sign-in attempts to keep consistent with the audit trail.

Every password check goes through ``SignInBackend`` (the only authentication backend), so
the sign-in page, the admin site's login and any other ``authenticate()`` call share one
lockout and one set of events. Each attempt holds a per-username lock from the lockout
check to the event that counts it, so a burst of concurrent attempts is counted as if they
came one after another.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from audit.actors import actor_for
from audit.models import Action, AuditEvent, Outcome
from audit.services import Actor, record
from bedside.accounts.access_audit import auth_failure_record, sign_in_attempt_recorded
from bedside.accounts.identity import SignInMethod, sign_in_method_of
from bedside.accounts.throttling import source_refused

FAILED = "login.failed"  # written by SignInBackend (or, outside it, access_audit.py)
SUCCEEDED = "login.succeeded"
REFUSED = "login.refused"  # a locked username tried again; not counted as a failure
UNLOCKED = "login.unlocked"  # an administrator ended a lockout
# The first number of the two-number advisory locks that serialise one username's attempts
# (any fixed 32-bit number; the audit chain's lock is a one-number key, another key space).
_USERNAME_LOCK_CLASS = 0x62656473


def _key(username: str) -> str:
    return username.strip().lower()[:64]


def _actor(source_address: str | None) -> Actor:
    return Actor(label="anonymous", role="none", source_address=source_address or None)


def login_locked_until(
    *, username: str, source_address: str | None, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When the lockout of this username from this address ends, or None when it may try
    to sign in. Counted per username and address, so that a stranger's failures lock the
    stranger out, not the clinician at their own workstation."""
    now = now or timezone.now()
    window = dt.timedelta(seconds=settings.BEDSIDE_LOGIN_LOCKOUT_S)
    limit = settings.BEDSIDE_LOGIN_MAX_FAILURES
    # The newest attempts: a lock needs `limit` failures in a row (no success between),
    # all within one period, the last of them less than a period ago. An administrator's
    # unlock ends it for every address.
    from_here = Q(code__in=(FAILED, SUCCEEDED), source_address=source_address)
    if source_address is None:
        from_here = Q(code__in=(FAILED, SUCCEEDED), source_address__isnull=True)
    latest = list(
        AuditEvent.objects.filter(
            from_here | Q(code=UNLOCKED),
            object_type="user",
            object_id__iexact=_key(username),
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


def login_success_record(
    *, user: Any, request: HttpRequest | None, method: SignInMethod | None = None
) -> None:
    """A successful sign-in, by the person who signed in (their role, their address), and
    how they signed in (by default, the method of the backend that authenticated them)."""
    record(
        actor=actor_for(user, request),
        action=Action.EXECUTE,
        code=SUCCEEDED,
        outcome=Outcome.SUCCESS,
        object_type="user",
        object_id=_key(user.get_username()),
        details={"method": str(method or sign_in_method_of(user))},
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


@contextmanager
def username_locked(username: str) -> Iterator[None]:
    """A transaction holding this username's attempt lock until it commits. Re-entrant:
    the form takes it around the backend, which takes it again."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_USERNAME_LOCK_CLASS, _key(username)]
        )
        yield


def _source(request: HttpRequest | None) -> str | None:
    return actor_for(None, request).source_address


class NotThisPerson(Exception):
    """Raised by a password check that does not know this person (a directory with no such
    account, or one not answering): the next backend decides, and records the attempt."""


class LockedOutSignIn:
    """The lockout around any username-and-password check (mixed in before the backend
    that checks the password: Django's own for local accounts, the directory's for LDAP):
    a locked username is refused (``login.refused``) without its password being tried; a
    wrong password is counted (``login.failed``) before the lock is released."""

    sign_in_method = SignInMethod.LOCAL

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        method = str(self.sign_in_method)
        source = _source(request)
        request_id = getattr(request, "request_id", "") if request is not None else ""
        if source_refused(source_address=source, method=method, request_id=request_id):
            if request is not None:
                request.bedside_source_throttled = True  # type: ignore[attr-defined]
            sign_in_attempt_recorded()  # in the window's one auth.throttled event
            return None
        with username_locked(username):
            until = login_locked_until(username=username, source_address=source)
            if until is not None:
                login_refusal_record(username=username, source_address=source)
                if request is not None:
                    request.bedside_locked_until = until  # type: ignore[attr-defined]
                sign_in_attempt_recorded()
                return None
            try:
                user = super().authenticate(  # type: ignore[misc]
                    request, username=username, password=password, **kwargs
                )
            except NotThisPerson:
                return None
            if user is None:
                auth_failure_record(
                    method=method,
                    reason=getattr(request, "bedside_sign_in_failure", "bad credentials"),
                    request=request,
                    claimed=username,
                )
                sign_in_attempt_recorded()
            return user


LOCAL_LOGIN_OFF = "local passwords are switched off (BEDSIDE_LOCAL_LOGIN=false)"


def local_password_allowed(user: Any) -> bool:
    """With ``BEDSIDE_LOCAL_LOGIN=false`` only the break-glass administrators (superusers)
    may sign in with a password Bedside keeps; everyone else through the hospital."""
    return bool(settings.BEDSIDE_LOCAL_LOGIN or user.is_superuser)


class LocalPasswords(ModelBackend):
    """Django's password check, refused (after the password was checked, so a wrong password
    is still only a wrong password) for people local passwords are switched off for."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not local_password_allowed(user):
            if request is not None:
                request.bedside_sign_in_failure = LOCAL_LOGIN_OFF  # type: ignore[attr-defined]
            return None
        return user


class SignInBackend(LockedOutSignIn, LocalPasswords):
    """Local accounts: Django's password check behind the lockout."""

    sign_in_method = SignInMethod.LOCAL


def directory_down_message() -> str:
    return (
        f"The hospital directory ({settings.BEDSIDE_LDAP_URI}) is not answering, so directory "
        "accounts cannot sign in just now. Try again in a few minutes; if this is an "
        "emergency, an administrator can sign in with the break-glass account."
    )


THROTTLED_MESSAGE = (
    "Too many failed sign-ins from your network address. Try again in a minute, or ask an "
    "administrator."
)


def login_unlock(*, username: str, actor: Actor) -> None:
    """End the lockout of this username, from every address (``login.unlocked``)."""
    record(
        actor=actor,
        action=Action.UPDATE,
        code=UNLOCKED,
        object_type="user",
        object_id=_key(username),
    )


class SignInForm(AuthenticationForm):
    """The sign-in page's form; the admin site's login uses it too (``AdminSignInForm``)."""

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if not username:
            return super().clean()
        # The same lock as the backend's, held until the success is recorded, so the
        # events of one username's attempts are in the order the attempts were decided.
        # A refusal leaves the block normally: raising inside it would roll back its event.
        refusal: ValidationError | None = None
        with username_locked(username):
            try:
                cleaned = super().clean()
            except ValidationError as exc:
                refusal = exc
            else:
                if self.user_cache is not None:
                    login_success_record(user=self.user_cache, request=self.request)
        if refusal is None:
            return cleaned
        if refusal.code == "invalid_login":
            if getattr(self.request, "bedside_sign_in_failure", "") == LOCAL_LOGIN_OFF:
                raise ValidationError(LOCAL_LOGIN_OFF_MESSAGE, code="local_off") from refusal
            if getattr(self.request, "bedside_source_throttled", False):
                raise ValidationError(THROTTLED_MESSAGE, code="throttled") from refusal
            until = getattr(self.request, "bedside_locked_until", None)
            until = until or login_locked_until(
                username=username, source_address=_source(self.request)
            )
            if until is not None:
                raise ValidationError(locked_message(until), code="locked") from refusal
            if getattr(self.request, "bedside_directory_down", False):
                message = directory_down_message()
                raise ValidationError(message, code="directory_down") from refusal
        raise refusal


class AdminSignInForm(SignInForm, AdminAuthenticationForm):
    """The admin site's login: the lockout and events of ``SignInForm``, staff only."""


LOCAL_LOGIN_OFF_MESSAGE = (
    "Bedside's own passwords are switched off: sign in with your hospital account. "
    "This form is for the emergency administrator account only."
)


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm
    # A form page: LoginView would also take PUT as a sign-in attempt.
    http_method_names = ["get", "head", "post", "options"]

"""Sign-in with the hospital's directory (Active Directory or OpenLDAP), through
django-auth-ldap, on the same rules as every other way of signing in.

``DirectorySignInBackend`` sits before the local accounts' backend when
``BEDSIDE_LDAP_URI`` is set. For each attempt it binds as Bedside's read-only service
account and looks the person up with ``BEDSIDE_LDAP_USER_FILTER`` (which leaves out
disabled accounts); then:

- found: the person's own password is checked by a bind as them; on success the Bedside
  user is created (first sign-in, with an unusable local password) or updated (name,
  e-mail), and their roles are replaced by those their directory groups give
  (``BEDSIDE_LDAP_ROLE_GROUPS``) at *every* sign-in; a wrong password is ``login.failed``;
- not found, but known here as a directory person (a Bedside user with no usable local
  password and no single sign-on identity: ``identity.account_made_by``): disabled or
  removed in the directory, refused (``login.failed``);
- not found and not known: not a directory person (a local account, or a single sign-on
  person typing a password); the local accounts decide (the break-glass administrator);
- the directory does not answer: the local accounts decide, and the sign-in page names
  the directory that is down.

An attempt this backend has judged (refused, failed, locked out) is not judged again by
the local accounts: one attempt, one event, one count towards the lockout.

The directory never sets the admin site's flags (``is_staff``, ``is_superuser``): a group
mapped to ``admin`` gives Bedside's admin role; the admin site itself stays with local
administrator accounts.

``DirectoryRecheckMiddleware`` looks a directory session's person up again at most every
``BEDSIDE_LDAP_RECHECK_S``; one no longer found has their session ended (``session.ended``).
If the directory does not answer then, the session is kept and a warning logged: in a
hospital, a directory outage must not sign every clinician out mid-shift.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import ldap
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django_auth_ldap.backend import LDAPBackend
from django_auth_ldap.config import (
    ActiveDirectoryGroupType,
    GroupOfNamesType,
    LDAPSearch,
    LDAPSettings,
    NestedActiveDirectoryGroupType,
    NestedGroupOfNamesType,
)

from audit.actors import actor_for
from audit.services import Actor
from bedside.accounts.access_audit import session_ended_record
from bedside.accounts.identity import (
    SESSION_METHOD_KEY,
    SignInMethod,
    account_made_by,
    parse_role_groups,
    roles_from_groups,
    sign_in_method_of,
    user_roles_replace,
)
from bedside.accounts.sign_in import LockedOutSignIn, NotThisPerson

logger = logging.getLogger(__name__)

# BEDSIDE_LDAP_GROUP_TYPE: how groups name their members, and the groups' object class.
GROUP_TYPES: dict[str, tuple[Any, str]] = {
    "groupofnames": (GroupOfNamesType, "(objectClass=groupOfNames)"),
    "nestedgroupofnames": (NestedGroupOfNamesType, "(objectClass=groupOfNames)"),
    "activedirectory": (ActiveDirectoryGroupType, "(objectClass=group)"),
    "nestedactivedirectory": (NestedActiveDirectoryGroupType, "(objectClass=group)"),
}
# Where a directory session keeps when its person was last found in the directory.
SESSION_CHECKED_KEY = "bedside_directory_checked_at"
ENDED_REASON = "disabled or removed in the directory"
NOT_FOUND_REASON = "not found in the directory (disabled or removed there)"
NOT_FOUND_OR_LOCAL_REASON = "neither in the directory nor a local account with this password"
DOWN_REASON = "the hospital directory is not answering"


def _group_type_key(name: str) -> str:
    return name.replace("-", "").replace("_", "").replace(" ", "").lower()


def role_groups() -> list[tuple[str, str]]:
    return parse_role_groups(settings.BEDSIDE_LDAP_ROLE_GROUPS, setting="BEDSIDE_LDAP_ROLE_GROUPS")


def check_configuration() -> None:
    """Fail the start on a directory setting that cannot work (the app's ``ready``)."""
    role_groups()
    if _group_type_key(settings.BEDSIDE_LDAP_GROUP_TYPE) not in GROUP_TYPES:
        raise ImproperlyConfigured(
            f"BEDSIDE_LDAP_GROUP_TYPE={settings.BEDSIDE_LDAP_GROUP_TYPE!r}: use groupOfNames, "
            "nested-groupOfNames, activeDirectory or nested-activeDirectory"
        )
    if "%(user)s" not in settings.BEDSIDE_LDAP_USER_FILTER:
        raise ImproperlyConfigured("BEDSIDE_LDAP_USER_FILTER must contain %(user)s")


def connection_options() -> dict[int, Any]:
    """python-ldap options of every connection: short timeouts, no referral chasing (AD
    answers searches of the domain's root with referrals Bedside cannot bind to), and, for
    LDAPS or StartTLS, the certificate checked against the hospital's CA."""
    timeout = settings.BEDSIDE_LDAP_TIMEOUT_S
    options: dict[int, Any] = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        ldap.OPT_REFERRALS: 0,
        ldap.OPT_PROTOCOL_VERSION: ldap.VERSION3,
    }
    uses_tls = settings.BEDSIDE_LDAP_URI.startswith("ldaps://") or settings.BEDSIDE_LDAP_START_TLS
    if uses_tls or settings.BEDSIDE_LDAP_CA_FILE:
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        if settings.BEDSIDE_LDAP_CA_FILE:
            options[ldap.OPT_X_TLS_CACERTFILE] = settings.BEDSIDE_LDAP_CA_FILE
        # Last: applies the TLS options above to this connection's own context.
        options[ldap.OPT_X_TLS_NEWCTX] = 0
    return options


def user_search() -> Any:
    return LDAPSearch(
        settings.BEDSIDE_LDAP_USER_SEARCH_BASE,
        ldap.SCOPE_SUBTREE,
        settings.BEDSIDE_LDAP_USER_FILTER,
    )


def ldap_settings() -> dict[str, Any]:
    """django-auth-ldap's configuration, from Bedside's settings (names without its prefix)."""
    group_type, group_filter = GROUP_TYPES[_group_type_key(settings.BEDSIDE_LDAP_GROUP_TYPE)]
    return {
        "SERVER_URI": settings.BEDSIDE_LDAP_URI,
        "BIND_DN": settings.BEDSIDE_LDAP_BIND_DN,
        "BIND_PASSWORD": settings.BEDSIDE_LDAP_BIND_PASSWORD,
        "START_TLS": settings.BEDSIDE_LDAP_START_TLS,
        "CONNECTION_OPTIONS": connection_options(),
        "USER_SEARCH": user_search(),
        "GROUP_SEARCH": LDAPSearch(
            settings.BEDSIDE_LDAP_GROUP_SEARCH_BASE or settings.BEDSIDE_LDAP_USER_SEARCH_BASE,
            ldap.SCOPE_SUBTREE,
            group_filter,
        ),
        "GROUP_TYPE": group_type(),
        "USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "ALWAYS_UPDATE_USER": True,
        # Never from the directory: the admin site's flags, Django's permissions, groups
        # mirrored by name (roles come from BEDSIDE_LDAP_ROLE_GROUPS alone).
        "USER_FLAGS_BY_GROUP": {},
        "FIND_GROUP_PERMS": False,
        "MIRROR_GROUPS": None,
        "CACHE_TIMEOUT": 0,
    }


def directory_open() -> Any:
    """A connection bound as Bedside's service account (raises ``ldap.LDAPError``)."""
    conn = ldap.initialize(settings.BEDSIDE_LDAP_URI, bytes_mode=False)
    for option, value in connection_options().items():
        conn.set_option(option, value)
    if settings.BEDSIDE_LDAP_START_TLS:
        conn.start_tls_s()
    conn.simple_bind_s(settings.BEDSIDE_LDAP_BIND_DN, settings.BEDSIDE_LDAP_BIND_PASSWORD)
    return conn


def _problem(exc: Exception) -> str:
    return f"unreachable: {type(exc).__name__}"


def directory_ping() -> str | None:
    """For /readyz: None when the directory answers Bedside's service account."""
    try:
        conn = directory_open()
        conn.unbind_s()
    except ldap.LDAPError as exc:
        return _problem(exc)
    return None


def directory_has_person(username: str) -> bool:
    """Whether the user filter still finds this person (raises ``ldap.LDAPError``)."""
    conn = directory_open()
    try:
        results = user_search().execute(conn, {"user": username})
    finally:
        conn.unbind_s()
    return len(results or []) == 1


def _directory_actor(request: HttpRequest | None) -> Actor:
    source = actor_for(None, request)
    return Actor(
        label="system:directory",
        role="system",
        source_address=source.source_address,
        request_id=source.request_id,
    )


def _known_directory_person(username: str) -> bool:
    """A Bedside user of this name whose account is the directory's (made or taken over by
    a directory sign-in), so the local accounts must not be asked about them. A single
    sign-on person has no usable local password either, but is not one."""
    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    return user is not None and account_made_by(user) == SignInMethod.DIRECTORY


class DirectorySignInBackend(LockedOutSignIn, LDAPBackend):  # type: ignore[misc]
    """The hospital directory's password check behind the lockout (module docstring)."""

    sign_in_method = SignInMethod.DIRECTORY
    _settings: Any = None
    _request: HttpRequest | None = None
    _passed = False

    @property
    def settings(self) -> Any:
        if self._settings is None:
            self._settings = LDAPSettings(self.settings_prefix, ldap_settings())
        return self._settings

    @settings.setter
    def settings(self, value: Any) -> None:
        self._settings = value

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        self._request, self._passed = request, False
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None and not self._passed and username is not None and password is not None:
            # Judged and recorded here (refused, failed, locked out): the local accounts
            # must not judge it again (a second event, a second count).
            raise PermissionDenied
        return user

    def _note(self, reason: str) -> None:
        if self._request is not None:
            self._request.bedside_sign_in_failure = reason  # type: ignore[attr-defined]

    def _pass(self) -> NotThisPerson:
        self._passed = True
        return NotThisPerson()

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        username = ldap_user._username
        try:
            ldap_user.connection  # noqa: B018 (opens and binds as the service account)
        except ldap.LDAPError as exc:
            logger.warning(
                "the directory %s is not answering (%s): local accounts only",
                settings.BEDSIDE_LDAP_URI,
                type(exc).__name__,
            )
            if self._request is not None:
                self._request.bedside_directory_down = True  # type: ignore[attr-defined]
            self._note(DOWN_REASON)
            raise self._pass() from exc
        if ldap_user.dn is None:
            if _known_directory_person(username):
                self._note(NOT_FOUND_REASON)
                return None
            # The local accounts decide; if they refuse too, this is the reason recorded.
            self._note(NOT_FOUND_OR_LOCAL_REASON)
            raise self._pass()
        self._note("wrong password")
        user = ldap_user.authenticate(password)
        if user is None:
            return None
        try:
            group_dns = ldap_user.group_dns
        except ldap.LDAPError as exc:
            logger.warning("the directory stopped answering (%s)", type(exc).__name__)
            self._note(DOWN_REASON)
            return None
        if user.has_usable_password():
            # A local account taken over by the directory: its old password must not work.
            user.set_unusable_password()
            user.save(update_fields=["password"])
        user_roles_replace(
            user=user,
            new_roles=roles_from_groups(group_dns, role_groups()),
            method=SignInMethod.DIRECTORY,
            actor=_directory_actor(self._request),
        )
        return user


def _on_logged_in(sender: Any, request: Any = None, user: Any = None, **_: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and sign_in_method_of(user) == SignInMethod.DIRECTORY:
        session[SESSION_CHECKED_KEY] = time.time()  # the sign-in itself found them


def connect() -> None:
    user_logged_in.connect(_on_logged_in, dispatch_uid="bedside_directory_checked")


class DirectoryRecheckMiddleware:
    """Ends the session of a directory person no longer found in the directory, at their
    first request after ``BEDSIDE_LDAP_RECHECK_S`` since they were last found (module
    docstring). Below AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_METHOD_KEY) == SignInMethod.DIRECTORY:
            self._recheck(request)
        return self.get_response(request)

    def _recheck(self, request: HttpRequest) -> None:
        user = request.user
        if not user.is_authenticated:
            return
        now = time.time()
        checked = request.session.get(SESSION_CHECKED_KEY) or 0.0
        if now - float(checked) < settings.BEDSIDE_LDAP_RECHECK_S:
            return
        try:
            present = directory_has_person(user.get_username())
        except ldap.LDAPError as exc:
            logger.warning(
                "could not re-check %s in the directory %s (%s): the session is kept, and "
                "checked again in %s s",
                user.pk,
                settings.BEDSIDE_LDAP_URI,
                type(exc).__name__,
                settings.BEDSIDE_LDAP_RECHECK_S,
            )
            request.session[SESSION_CHECKED_KEY] = now
            return
        if present:
            request.session[SESSION_CHECKED_KEY] = now
            return
        session_ended_record(
            user=user, reason=ENDED_REASON, request=request, method=str(SignInMethod.DIRECTORY)
        )
        request.session.flush()
        request.user = AnonymousUser()

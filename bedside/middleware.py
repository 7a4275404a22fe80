"""Request ids for audit correlation, a hard cap on request body size (413), and the
headers every response carries (no caching of patient data, content security policy)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.db import close_old_connections
from django.db.utils import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from bedside.logformat import current_request_id

SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Gives each request an id (a safe incoming X-Request-ID, else a new one): on the
    request for audit events, on every log line written while it runs, in the response's
    X-Request-ID header (which gunicorn's access log writes), and in the headers of the
    tasks it sends."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = current_request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


def too_large_response(limit: int) -> JsonResponse:
    return JsonResponse(
        {"errors": [{"loc": [], "msg": f"request body is larger than {limit} bytes"}]},
        status=413,
    )


# The routes that take a patient's record (case intake, as our JSON or a FHIR Bundle, and a
# CDS Hooks call with its prefetch): BEDSIDE_MAX_FHIR_BODY_BYTES. Every other route:
# BEDSIDE_MAX_BODY_BYTES. One limit per route, whatever the content type (nginx's
# locations in deploy/nginx/bedside.conf say the same).
RECORD_ROUTES = re.compile(r"^/(api/v1/cases/|cds-services/[^/]+)$")


def body_limit(path: str) -> tuple[int, str]:
    """The body limit of a route, and the setting it comes from."""
    if RECORD_ROUTES.match(path):
        return settings.BEDSIDE_MAX_FHIR_BODY_BYTES, "BEDSIDE_MAX_FHIR_BODY_BYTES"
    return settings.BEDSIDE_MAX_BODY_BYTES, "BEDSIDE_MAX_BODY_BYTES"


class BodySizeLimitMiddleware:
    """Refuse oversized bodies before anything reads them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit, _ = body_limit(request.path)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            return too_large_response(limit)
        return self.get_response(request)


def background_poll(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Marks a view that a page's script calls on its own (the case page's status poll):
    such a request is not the person's, so it does not restart their idle timer."""
    view.background_poll = True  # type: ignore[attr-defined]
    return view


class IdleTimeoutMiddleware:
    """The idle timeout (BEDSIDE_SESSION_IDLE_S): each request a person makes saves their
    session, which starts the timer again; a ``background_poll`` view's does not, or a case
    page left open would keep the session alive for ever. Django's
    SESSION_SAVE_EVERY_REQUEST cannot make the exception, so it is off and this does its
    work. Below SessionMiddleware, which saves what this marks on the way out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        polled = getattr(request, "background_poll", False)
        if session is not None and not polled and not session.is_empty():
            session.modified = True
        return response

    def process_view(
        self, request: HttpRequest, view: Callable[..., HttpResponse], *args: object
    ) -> None:
        if getattr(view, "background_poll", False):
            request.background_poll = True  # type: ignore[attr-defined]


class NulInQueryMiddleware:
    """A NUL character in a query parameter (its name or a value) is a 400 naming it, on
    every screen and API filter at once: PostgreSQL cannot hold one in text, so a filter
    that reached the database with it was a server error. No person types one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return JsonResponse(
                    {"errors": [{"loc": ["query", name], "msg": "contains a NUL character (%00)"}]},
                    status=400,
                )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """PostgreSQL down or restarting: answer 503 with the reason, never a 500 page.
    Connections are health-checked per request, so service resumes when it is back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        close_old_connections()
        response = JsonResponse(
            {"errors": [{"loc": [], "msg": "the database is unavailable; try again shortly"}]},
            status=503,
        )
        response["Retry-After"] = "5"
        return response


class NoStoreMiddleware:
    """No browser, proxy or shared workstation keeps a copy of what Bedside answers: cases,
    audit trails, exports and CDS Hooks cards carry patient data, and deciding page by page
    which do not is how one gets missed. Static files never reach this middleware (WhiteNoise,
    above it, answers them with their own long cache)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers["Cache-Control"] = "no-store"
        # HTTP/1.0 caches (and some old proxies) know only Pragma.
        response.headers["Pragma"] = "no-cache"
        return response


class ContentSecurityPolicyMiddleware:
    """Pages may load scripts, styles, images and fonts from this server only, and run no
    inline script or style: nothing a page does reaches outside the hospital, and injected
    markup cannot execute."""

    POLICY = "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", sign_out_policy(self.POLICY))
        return response


def sign_out_policy(policy: str) -> str:
    """With single sign-on on, signing out (a form) ends at the provider's end-session page:
    a form's redirect must be allowed to go there (browsers apply form-action to it)."""
    issuer = settings.BEDSIDE_OIDC_ISSUER
    if not issuer:
        return policy
    parts = urlsplit(issuer)
    return policy.replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )


DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "worker-src 'self' blob:; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def docs_policy(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The API documentation pages (Swagger UI, Redoc): scripts from this server only, as
    everywhere, but inline styles allowed, which both libraries insert at run time."""

    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.headers["Content-Security-Policy"] = DOCS_POLICY
        return response

    return wrapped

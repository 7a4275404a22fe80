"""The single sign-on pages: the start (to the provider, with state, nonce and PKCE), the
callback (the code back from the provider), and signing out with single logout. Thin: the
flow is mozilla-django-oidc's, the checks and the people are ``bedside/accounts/sso.py``'s."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from bedside.accounts import sso
from bedside.accounts.access_audit import auth_failure_record
from bedside.accounts.identity import SESSION_METHOD_KEY, SignInMethod
from bedside.accounts.sign_in import SignInForm, SignInView, login_success_record


def sign_in_page_context() -> dict[str, Any]:
    """What the sign-in page shows besides the form: the single sign-on button (and the
    provider's last problem, without asking it again), and whether the password form is
    everyone's or only the emergency administrators'."""
    enabled = sso.sso_enabled()
    return {
        "sso_enabled": enabled,
        "sso_provider_name": sso.provider_name() if enabled else "",
        "sso_problem": sso.recent_problem() if enabled else None,
        "local_login": settings.BEDSIDE_LOCAL_LOGIN,
    }


class SignInPage(SignInView):
    """The sign-in page: the hospital's single sign-on first when it is on, then the
    password form (everyone's, or the emergency administrators' only)."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context.update(sign_in_page_context())
        return context


def sign_in_problem(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    """The sign-in page, with what went wrong above it (the local form stays usable)."""
    context = sign_in_page_context()
    context.update({"form": SignInForm(request), "sso_problem": message, "next": ""})
    return render(request, "registration/login.html", context, status=status)


class SsoStartView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    get_settings = staticmethod(sso.library_setting)
    http_method_names = ["get", "head", "options"]

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # not the library's: the endpoint is from discovery
        self.OIDC_RP_CLIENT_ID = sso.library_setting("OIDC_RP_CLIENT_ID")

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso.sso_enabled():
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = sso.provider_configuration().authorization_endpoint
        except sso.ProviderUnavailable as exc:
            return sign_in_problem(request, str(exc), status=503)
        response: HttpResponse = super().get(request)
        return response


class SsoCallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    get_settings = staticmethod(sso.library_setting)
    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso.sso_enabled():
            raise Http404("single sign-on is not configured")
        states = request.session.get("oidc_states")
        state = request.GET.get("state", "")
        error = request.GET.get("error", "")
        refusal = ""
        if error:
            refusal = f"provider error: {error[:80]}"
        elif not request.GET.get("code") or not state:
            refusal = "no code or state"
        elif not isinstance(states, dict) or state not in states:
            refusal = "state mismatch"
        if refusal:
            if isinstance(states, dict) and state in states:
                del states[state]  # as the library does: a state is used once
                request.session.modified = True
            auth_failure_record(method="sso", reason=refusal, request=request)
            return sign_in_problem(request, sso.SignInRefused(refusal).message, status=400)
        response: HttpResponse = super().get(request)
        return response

    def login_failure(self) -> HttpResponse:
        failure = getattr(self.request, "bedside_sso_failure", None)
        if isinstance(failure, sso.SsoFailure):
            status = 503 if failure.unavailable else 403
            return sign_in_problem(self.request, failure.message, status=status)
        return sign_in_problem(self.request, sso.SignInRefused("").message, status=403)

    def login_success(self) -> HttpResponse:
        response: HttpResponse = super().login_success()
        login_success_record(user=self.user, request=self.request, method=SignInMethod.SSO)
        return response


class SignOutView(auth_views.LogoutView):
    """Signing out (``session.ended``, as ever); a person who came through single sign-on
    is then sent to the provider to end its session too, when it offers that."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        id_token = request.session.get("oidc_id_token")
        method = request.session.get(SESSION_METHOD_KEY)
        response: HttpResponse = super().post(request, *args, **kwargs)
        if method == SignInMethod.SSO and isinstance(id_token, str) and sso.sso_enabled():
            url = sso.single_logout_url(
                id_token=id_token,
                post_logout_redirect_uri=request.build_absolute_uri(reverse("login")),
            )
            if url:
                return HttpResponseRedirect(url)
        return response

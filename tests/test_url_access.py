"""Who may use each URL: every route Django resolves, driven as every principal, answers with
the status written in ROUTES below, and nobody reads a case that is not theirs anywhere.

A route that ROUTES does not list fails ``test_every_route_is_in_the_access_table``: a new
URL cannot ship before someone decides who may use it. Two exceptions, by design:

- the Django admin site (``admin/...``, about 35 routes): every one of its views goes
  through ``admin.site.admin_view`` (staff only), so one representative pair of rows (the
  index and a model's changelist) stands for them all;
- static files: served by WhiteNoise middleware from STATIC_ROOT, not by a URL pattern, so
  there is nothing to resolve (and no media uploads exist).

The audit events each call writes are the business of tests/audit/test_completeness.py;
this file is about the status codes and about other people's cases.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from bedside import roles
from bedside.accounts.services import IssuedKey
from clinical.ehr.cds_hooks import SERVICES
from clinical.models import Case
from clinical.services import emergency_access_grant
from reasoning.models import ValidationReport
from tests.factories import TEST_ACTOR, load_case, submitted_case
from tests.fakes import FakeModelServer

# Who asks, in the column order of ROUTES. Where a route takes a case id, each principal asks
# for the case named here: "alice" is the clinician's completed case, "key" the integration
# key's own (queued) case. Everyone but alice herself, the auditor and the admin must find
# alice's case missing (404), never merely forbidden, and never shown.
PRINCIPALS = ("anonymous", "clinician", "other", "key", "key-other", "auditor", "admin")
CASE_OF = {
    "anonymous": "alice",
    "clinician": "alice",  # alice, her own case
    "other": "alice",  # bob, another clinician
    "key": "key",  # the integration key, its own case
    "key-other": "alice",  # the integration key, alice's case
    "auditor": "alice",  # carol
    "admin": "alice",  # dora: superuser and staff, as `manage.py demo_users` makes admins
}
# Whose case each principal may ever see in a response body.
SEES_CASE_OF = {
    "alice": {"clinician", "auditor", "admin"},
    "key": {"key", "key-other", "auditor", "admin"},
}
# Requests come from a workstation on the hospital network, not from this host (the test
# client's default 127.0.0.1 would open /metrics to everyone: loopback is its scrapers' way).
WORKSTATION = "10.20.30.40"

Expect = tuple[int, int, int, int, int, int, int]
#                   anon clin other key key-o audit admin
ROUTES: dict[str, list[tuple[str, Expect]]] = {
    # Home: people only; an API key is no browser session (login redirect).
    "": [("GET", (302, 200, 200, 302, 302, 200, 200))],
    # --- The case API: clinicians and keys their own cases; auditor and admin read all. --
    "api/v1/cases/": [
        ("GET", (401, 200, 200, 200, 200, 200, 200)),  # lists: each sees only theirs
        ("POST", (401, 202, 202, 202, 202, 403, 403)),  # only submitters submit
    ],
    "api/v1/cases/<uuid:case_id>/": [("GET", (401, 200, 404, 200, 404, 200, 200))],
    "api/v1/cases/<uuid:case_id>/reviews/": [
        ("GET", (401, 200, 404, 200, 404, 200, 200)),
        ("POST", (401, 201, 404, 403, 403, 403, 403)),  # only clinicians review
    ],
    # 409: let through, but the case is not failed (so nothing is re-run).
    "api/v1/cases/<uuid:case_id>/rerun/": [("POST", (401, 409, 404, 409, 404, 403, 403))],
    # Break-glass: clinicians, and keys issued with cases:emergency named (this key has no
    # scopes: refused). 400: let through, but the reason given is too short, so nothing is
    # granted (tests/clinical/test_emergency_access.py grants it).
    "api/v1/cases/<uuid:case_id>/emergency-access/": [
        ("POST", (401, 400, 400, 403, 403, 403, 403))
    ],
    # Validation figures (no patient data): any signed-in role.
    "api/v1/model/validation/": [("GET", (401, 200, 200, 200, 200, 200, 200))],
    # --- The model card pages: people who read cases. -------------------------------------
    "model/": [("GET", (302, 200, 200, 302, 302, 200, 200))],
    "model/reports/<int:report_id>/reliability.png": [("GET", (302, 200, 200, 302, 302, 200, 200))],
    # --- Operations. ----------------------------------------------------------------------
    # Public: a load balancer's liveness probe carries no credentials; says only "ok".
    "healthz": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    # Public: the readiness probe likewise; names dependencies that are down, no patient data.
    "readyz": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    # Loopback or BEDSIDE_METRICS_TOKEN only (bedside/ops/health.py): no role opens it from a
    # workstation, not even admin; the scraper's way in is tested below.
    "metrics": [("GET", (403, 403, 403, 403, 403, 403, 403))],
    # --- Signing in and out. --------------------------------------------------------------
    # Public: the sign-in form must be reachable before one has signed in.
    "accounts/login/": [
        ("GET", (200, 200, 200, 200, 200, 200, 200)),
        ("POST", (200, 200, 200, 200, 200, 200, 200)),  # empty: the form again, with errors
    ],
    # Public: signing out is harmless for anyone (POST only since Django 5).
    "accounts/logout/": [("POST", (200, 200, 200, 200, 200, 200, 200))],
    # Single sign-on, off here (no BEDSIDE_OIDC_ISSUER): not found for everyone. On, they
    # are the sign-in's start and the provider's callback (tests/clinical/test_sign_in_sso.py).
    "oidc/start/": [("GET", (404, 404, 404, 404, 404, 404, 404))],
    "oidc/callback/": [("GET", (404, 404, 404, 404, 404, 404, 404))],
    # --- The Django admin site, represented by its index and one changelist: staff only. --
    "admin/": [("GET", (302, 302, 302, 302, 302, 302, 200))],
    "admin/clinical/case/": [("GET", (302, 302, 302, 302, 302, 302, 200))],
    # --- API documentation. Public (README "anyone"): it describes the API, holds no
    # patient data, and an integrator reads it before holding a key. ----------------------
    "api/v1/schema/": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    "api/v1/docs/": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    "api/v1/redoc/": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    # --- CDS Hooks. Discovery is public by the CDS Hooks specification (no patient data);
    # the calls need the EHR's signed JWT, which no session or Bearer key is
    # (tests/clinical/test_cds_hooks.py drives the EHR itself). ----------------------------
    "cds-services": [("GET", (200, 200, 200, 200, 200, 200, 200))],
    "cds-services/<str:service_id>": [("POST", (401, 401, 401, 401, 401, 401, 401))],
    "cds-services/<str:service_id>/feedback": [("POST", (401, 401, 401, 401, 401, 401, 401))],
    # --- The clinician's screens: sessions only; a case screen is its submitter's (an
    # admin's: every case), anyone else's 404, but for another clinician: 403, a page that
    # offers emergency access and names neither the case nor its patient. Reviews:
    # clinicians; re-runs: the submitter.
    "cases/": [("GET", (302, 200, 200, 302, 302, 200, 200))],  # "my cases": each their own
    "cases/new/": [
        ("GET", (302, 200, 200, 302, 302, 403, 403)),
        ("POST", (302, 400, 400, 302, 302, 403, 403)),  # 400: the empty form is invalid
    ],
    "cases/<uuid:case_id>/": [("GET", (302, 200, 403, 302, 302, 404, 200))],
    # Break-glass by clinicians: alice's own case goes back to its page (302); bob's empty
    # reason is refused (400); other roles are no clinicians (403).
    "cases/<uuid:case_id>/emergency-access/": [("POST", (302, 302, 400, 302, 302, 403, 403))],
    "cases/<uuid:case_id>/status.json": [("GET", (401, 200, 404, 401, 401, 404, 200))],
    "cases/<uuid:case_id>/reviews/": [("POST", (302, 302, 404, 302, 302, 404, 403))],
    # 302 for alice: back to her case page, "not sent again" (the case is not failed).
    "cases/<uuid:case_id>/rerun/": [("POST", (302, 302, 404, 302, 302, 404, 403))],
    # --- The audit trail: auditors and admins only. ---------------------------------------
    "api/v1/audit/events/": [("GET", (401, 403, 403, 403, 403, 200, 200))],
    "api/v1/audit/verify/": [
        ("GET", (401, 403, 403, 403, 403, 200, 200)),
        ("POST", (401, 403, 403, 403, 403, 400, 400)),  # 400: an empty checkpoint
    ],
    "audit/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/cases/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/cases/<uuid:case_id>/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/investigate/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/events/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/events/export.csv": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/events/export.fhir.json": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    "audit/chain/": [
        ("GET", (302, 403, 403, 302, 302, 200, 200)),
        ("POST", (302, 403, 403, 302, 302, 200, 200)),
    ],
    "audit/emergency-access/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
    # 400: let through, but marking reviewed needs the auditor's note (none sent).
    "audit/emergency-access/<int:grant_id>/review/": [
        ("POST", (302, 403, 403, 302, 302, 400, 400))
    ],
    "audit/people/": [("GET", (302, 403, 403, 302, 302, 200, 200))],
}
# Bodies for the calls that need one (JSON for the API, form fields for the screens).
JSON_BODIES: dict[tuple[str, str], Any] = {
    ("api/v1/cases/", "POST"): load_case(),
    ("api/v1/cases/<uuid:case_id>/reviews/", "POST"): {"decision": "accept"},
    ("api/v1/cases/<uuid:case_id>/emergency-access/", "POST"): {"reason": "too short"},
    ("api/v1/audit/verify/", "POST"): {},
    ("cds-services/<str:service_id>", "POST"): {},
    ("cds-services/<str:service_id>/feedback", "POST"): {},
}
FORM_BODIES: dict[tuple[str, str], dict[str, str]] = {
    ("cases/<uuid:case_id>/reviews/", "POST"): {"decision": "accept"},
}


def resolved_routes() -> Iterator[str]:
    """Every URL pattern Django resolves, as its full pattern string; the admin site as the
    two rows that stand for it (see the module docstring)."""

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLPattern):
                yield route
            elif entry.app_name == "admin":
                yield from (route, f"{route}clinical/case/")
            else:
                yield from walk(entry.url_patterns, route)

    yield from walk(get_resolver().url_patterns, "")


def test_every_route_is_in_the_access_table() -> None:
    routes = list(resolved_routes())
    assert len(routes) == len(set(routes)), "two patterns with the same route string"
    assert sorted(set(routes) - set(ROUTES)) == [], "routes nobody decided access for"
    assert sorted(set(ROUTES) - set(routes)) == [], "rows for routes that no longer exist"


@dataclass(frozen=True)
class World:
    users: dict[str, User]
    key: IssuedKey
    cases: dict[str, Case]
    report_id: int
    grant_id: int


def _client(principal: str, world: World) -> APIClient:
    # A server error is a status like any other here: the table says which one is right.
    client = APIClient(REMOTE_ADDR=WORKSTATION, raise_request_exception=False)
    if principal in ("key", "key-other"):
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.key.key}")
    elif principal != "anonymous":
        client.force_login(world.users[principal])
    return client


def _path(route: str, principal: str, world: World) -> str:
    return "/" + route.replace("<uuid:case_id>", str(world.cases[CASE_OF[principal]].id)).replace(
        "<int:report_id>", str(world.report_id)
    ).replace("<str:service_id>", next(iter(SERVICES))).replace(
        "<int:grant_id>", str(world.grant_id)
    )


def _call(client: APIClient, method: str, route: str, path: str) -> tuple[int, bytes]:
    if (route, method) in JSON_BODIES:
        body = json.dumps(JSON_BODIES[route, method])
        response = client.generic(method, path, body, content_type="application/json")
    elif method == "POST":
        response = client.post(path, FORM_BODIES.get((route, method), {}))
    else:
        response = client.generic(method, path)
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, content


@pytest.fixture
def world(
    completed_case: Case,
    alice: User,
    bob: User,
    carol: User,
    integration_key: IssuedKey,
    fake_model: FakeModelServer,
) -> World:
    dora = User.objects.create_superuser("dora", password="correct horse battery")
    roles.grant_role(dora, roles.ADMIN)
    key_case = submitted_case(integration_key.api_key.user)
    report = ValidationReport.objects.create(
        model_name="m",
        model_revision="r",
        prompt_version="v",
        prompt_sha256="0" * 64,
        confidence_method="c",
        dataset_name="d",
        dataset_sha256="0" * 64,
        items_total=0,
        items_answered=0,
        samples_per_item=1,
        reliability_png=b"\x89PNG",
    )
    # An emergency access waiting for review (bob's, to the key's case, which no row of
    # the table has bob ask for).
    grant = emergency_access_grant(
        case=key_case,
        person=bob,
        reason="Covering the ward tonight, patient unwell",
        actor=TEST_ACTOR,
    )
    return World(
        users={"clinician": alice, "other": bob, "auditor": carol, "admin": dora},
        key=integration_key,
        cases={"alice": completed_case, "key": key_case},
        report_id=report.pk,
        grant_id=grant.pk,
    )


def test_every_route_as_every_principal_answers_as_the_table_says(world: World) -> None:
    unexpected: list[str] = []
    leaks: list[str] = []
    hidden = {name: str(case.id).encode() for name, case in world.cases.items()}
    for route, calls in ROUTES.items():
        for method, expected in calls:
            for principal, want in zip(PRINCIPALS, expected, strict=True):
                path = _path(route, principal, world)
                status, content = _call(_client(principal, world), method, route, path)
                if status != want:
                    unexpected.append(f"{method} /{route} as {principal}: {status}, not {want}")
                # Another's case must not show anywhere: not in a list, a page or an error.
                for owner, case_id in hidden.items():
                    if principal not in SEES_CASE_OF[owner] and case_id in content:
                        leaks.append(f"{method} {path} as {principal} shows {owner}'s case")
    assert unexpected + leaks == [], "\n".join(["", *unexpected, *leaks])


# Methods a route does not list must do nothing, whoever asks: the role check may answer
# first (302/401/403/404), or 405, but never 2xx. Asked as the principals that hold some
# right on every route (the admin site is Django's own and keeps its own methods).
UNLISTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
METHOD_PROBES = ("clinician", "key", "admin")


def test_no_route_answers_a_method_the_table_does_not_list(world: World) -> None:
    answered: list[str] = []
    for route, calls in ROUTES.items():
        if route.startswith("admin/"):
            continue
        listed = {method for method, _ in calls}
        for method in UNLISTED_METHODS:
            if method in listed:
                continue
            for principal in METHOD_PROBES:
                path = _path(route, principal, world)
                status, _ = _call(_client(principal, world), method, route, path)
                if 200 <= status < 300:
                    answered.append(f"{method} /{route} as {principal}: {status}")
    assert answered == [], "\n".join(["", *answered])


def test_metrics_answer_this_host_or_the_token_only(
    db: None, fake_model: FakeModelServer, settings: Any
) -> None:
    settings.BEDSIDE_METRICS_TOKEN = token = uuid.uuid4().hex
    assert APIClient(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    elsewhere = APIClient(REMOTE_ADDR=WORKSTATION)
    assert elsewhere.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert elsewhere.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403

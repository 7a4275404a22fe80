"""What every page's navigation needs: the signed-in person's role and the links it opens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from bedside import roles

# (label, path, roles that see it). Screens register here as they are built.
NAV = [
    ("Home", "/", set(roles.ALL_ROLES)),
    ("The model", "/model/", {roles.CLINICIAN, roles.AUDITOR, roles.ADMIN}),
    ("Administration", "/admin/", {roles.ADMIN}),
    ("New case", "/cases/new/", {roles.CLINICIAN}),
    ("My cases", "/cases/", {roles.CLINICIAN}),
    # The auditors' screens (audit/views.py).
    ("Audit overview", "/audit/", {roles.AUDITOR, roles.ADMIN}),
    ("Investigate", "/audit/investigate/", {roles.AUDITOR, roles.ADMIN}),
    ("Audited cases", "/audit/cases/", {roles.AUDITOR, roles.ADMIN}),
    ("Audit events", "/audit/events/", {roles.AUDITOR, roles.ADMIN}),
    ("Chain status", "/audit/chain/", {roles.AUDITOR, roles.ADMIN}),
    ("Emergency access", "/audit/emergency-access/", {roles.AUDITOR, roles.ADMIN}),
    ("People", "/audit/people/", {roles.AUDITOR, roles.ADMIN}),
]


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    mine = roles.roles_of(user)
    items = [
        {"label": label, "url": url, "current": request.path == url}
        for label, url, allowed in NAV
        if mine & allowed
    ]
    return {"nav_items": items, "nav_role": roles.primary_role(user)}

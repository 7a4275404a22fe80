"""Who did something: the ``Actor`` of an audit event, from a user and their request."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from audit.services import Actor
from bedside import roles
from bedside.http.addresses import client_address


def actor_for(user: Any, request: HttpRequest | None = None) -> Actor:
    # Behind a trusted proxy, the client it names (bedside/http/addresses.py).
    source = client_address(request.META) if request is not None else None
    return Actor(
        label=user.get_username() if user is not None else "anonymous",
        role=roles.primary_role(user),
        user_id=user.pk if user is not None and user.is_authenticated else None,
        source_address=source or None,
        request_id=getattr(request, "request_id", "") if request is not None else "",
    )

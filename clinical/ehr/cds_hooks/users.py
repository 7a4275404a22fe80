"""The Bedside user an EHR acts as, and the actor its calls are audited under."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.actors import actor_for
from audit.services import Actor, acting_as
from bedside import roles


def ehr_user(issuer: str) -> Any:
    """The service user an EHR acts as (made on its first call, with the integration role)."""
    user_model = get_user_model()
    username = f"cds:{hashlib.sha256(issuer.encode()).hexdigest()[:16]}"
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
            # The group change writes the one `role.changed` event (bedside.accounts.
            # access_audit), as this actor: the EHR's own request is not signed in.
            with acting_as(Actor(label=f"cds-hooks:{issuer}"[:150], role="system")):
                roles.grant_role(user, roles.INTEGRATION)
    return user


def ehr_actor(user: Any, issuer: str, request: Any) -> Actor:
    actor = actor_for(user, request)
    return Actor(
        label=f"cds:{issuer}"[:150],
        role=actor.role,
        user_id=actor.user_id,
        source_address=actor.source_address,
        request_id=actor.request_id,
    )

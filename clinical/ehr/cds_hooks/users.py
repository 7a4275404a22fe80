"""The Bedside user an EHR acts as, and the actor its calls are audited under."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from audit.actors import actor_for
from audit.models import Action
from audit.services import Actor, record
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
            roles.grant_role(user, roles.INTEGRATION)
            record(
                actor=Actor(label="cds-hooks", role="system"),
                action=Action.CREATE,
                code="role.changed",
                object_type="user",
                object_id=str(user.pk),
                details={"granted": roles.INTEGRATION, "cds_issuer": issuer},
            )
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

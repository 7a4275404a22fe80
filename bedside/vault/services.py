"""Writes of the vault: re-wrapping data keys after a master-key rotation, audited."""

from __future__ import annotations

from django.db import transaction

from audit.models import Action
from audit.services import Actor, record
from bedside.vault import encryption


def data_keys_rewrap(*, actor: Actor) -> encryption.RewrapReport:
    """Re-wrap every data key under the current master key (after a master-key rotation),
    audited with the counts and key ids, never a key."""
    with transaction.atomic():
        report = encryption.rewrap_data_keys()
        record(
            actor=actor,
            action=Action.UPDATE,
            code="keys.rewrapped",
            object_type="data_keys",
            details={
                "master_key_id": report.master_key_id,
                "rewrapped": report.rewrapped,
                "already_current": report.already_current,
                "from_master_key_ids": report.from_master_key_ids,
            },
        )
    return report

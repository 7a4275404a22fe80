"""Re-wrap every data key under the current (first) master key of BEDSIDE_MASTER_KEYS.

The rotation runbook (deploy/README.md): put the new key first in BEDSIDE_MASTER_KEYS,
keeping the old one after it; restart; run this; then remove the old key. Only the data-key
rows change: cases, runs and reviews are never rewritten.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import Actor
from bedside.vault import services as vault_services
from bedside.vault.encryption import DecryptionError


class Command(BaseCommand):
    help = "Re-wrap all data keys under the current master key (after adding a new one)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = vault_services.data_keys_rewrap(
                actor=Actor(label="manage.py rewrap_data_keys", role="admin")
            )
        except DecryptionError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{report.rewrapped} data key(s) re-wrapped under master key "
            f"{report.master_key_id!r} (from {', '.join(report.from_master_key_ids) or 'none'}); "
            f"{report.already_current} already were. Master keys other than "
            f"{report.master_key_id!r} are no longer needed."
        )

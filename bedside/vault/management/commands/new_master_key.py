"""Print a fresh master-key entry for BEDSIDE_MASTER_KEYS (``id:base64-key``).

The key is printed once and stored nowhere: put it in the secret store that feeds the
environment (deploy/bedside.env), first in the list, then run ``rewrap_data_keys``.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bedside.vault.keyring import new_master_key_entry


class Command(BaseCommand):
    help = "Print a new id:key entry for BEDSIDE_MASTER_KEYS (stored nowhere)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--prefix", default="k", help="start of the key id (default: k)")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        self.stdout.write(new_master_key_entry(prefix))

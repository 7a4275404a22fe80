"""Revoke an integration key by name or prefix; the next request with it gets 401."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from bedside.accounts import services as accounts_services
from bedside.accounts.models import ApiKey


class Command(BaseCommand):
    help = "Revoke an API key at once (by --name or --prefix)."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--name")
        which.add_argument("--prefix", help="the part after 'bsk_' that list_api_keys shows")

    def handle(self, *args: Any, name: str | None, prefix: str | None, **options: Any) -> None:
        found = ApiKey.objects.filter(**({"name": name} if name else {"prefix": prefix})).first()
        if found is None:
            raise CommandError(f"no key with {'name' if name else 'prefix'} {name or prefix!r}")
        revoked = accounts_services.api_key_revoke(
            api_key=found, actor=Actor(label="manage.py revoke_api_key", role="admin")
        )
        if revoked:
            self.stdout.write(f"Revoked key {found.prefix}… ({found.name}).")
        else:
            self.stdout.write(f"Key {found.prefix}… ({found.name}) was already revoked.")

"""Issue an integration key; the key is printed once and only its hash is stored."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from clinical import roles, services
from clinical.models import ApiKey


class Command(BaseCommand):
    help = "Issue an API key for an integration (prints the key once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="who uses the key, e.g. 'epic-prod'")
        parser.add_argument("--role", default=roles.INTEGRATION, choices=roles.ALL_ROLES)

    def handle(self, *args: Any, name: str, role: str, **options: Any) -> None:
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"a key named {name!r} already exists")
        issued = services.api_key_issue(
            name=name, role=role, actor=Actor(label="manage.py issue_api_key", role="admin")
        )
        self.stdout.write(issued.key)
        self.stderr.write(
            f"Issued key {issued.api_key.prefix}… for {name!r} with role {role}. "
            "Store it now: it cannot be shown again."
        )

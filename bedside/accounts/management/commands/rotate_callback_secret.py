"""Make a new callback secret for a key (printed once); the old one stops signing at once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from bedside.accounts import services as accounts_services
from bedside.accounts.models import ApiKey


class Command(BaseCommand):
    help = "Rotate an integration key's completion-callback secret (prints the new one once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="the key's name")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        api_key = ApiKey.objects.filter(name=name).first()
        if api_key is None:
            raise CommandError(f"no key named {name!r}")
        if not api_key.callback_url:
            raise CommandError(f"key {name!r} has no callback URL; it signs no callbacks")
        secret = accounts_services.api_key_callback_secret_rotate(
            api_key=api_key, actor=Actor(label="manage.py rotate_callback_secret", role="admin")
        )
        self.stdout.write(secret)
        self.stderr.write(
            f"New callback secret for {name!r}. Store it now: it cannot be shown again; "
            "callbacks are signed with it from now on."
        )

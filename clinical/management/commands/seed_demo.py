"""Demo logins and a fresh demo API key for a single-machine `make run`."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from audit.services import Actor
from bedside import roles
from bedside.accounts import services as accounts_services
from bedside.accounts.models import ApiKey

DEMO_USERS = [
    ("clinician", roles.CLINICIAN),
    ("auditor", roles.AUDITOR),
    ("admin", roles.ADMIN),
]


class Command(BaseCommand):
    help = "Create the demo accounts and print them with a new demo API key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="bedside-demo")

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        actor = Actor(label="manage.py seed_demo", role="admin")
        for username, role in DEMO_USERS:
            accounts_services.user_ensure(
                username=username, password=password, role=role, actor=actor
            )
        with transaction.atomic():
            # One demo key at a time: the previous one is renamed out of the way.
            for old in ApiKey.objects.filter(name="demo"):
                old.name = f"demo-retired-{old.pk}"
                old.user.username = f"key:{old.name}"
                old.user.is_active = False
                old.user.save(update_fields=["username", "is_active"])
                old.save(update_fields=["name"])
            issued = accounts_services.api_key_issue(
                name="demo", role=roles.INTEGRATION, actor=actor
            )
        self.stdout.write(f"Demo logins (password for each: {password}):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {role}")
        self.stdout.write(f"Demo API key (integration): {issued.key}")

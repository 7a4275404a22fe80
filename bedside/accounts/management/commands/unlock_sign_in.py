"""End the sign-in lockout of a username (from every address) before its period is over."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from audit.services import Actor
from bedside.accounts.sign_in import login_unlock


class Command(BaseCommand):
    help = "Let a locked username sign in again at once (audited as login.unlocked)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        login_unlock(username=username, actor=Actor(label="manage.py unlock_sign_in", role="admin"))
        self.stdout.write(f"Sign-in unlocked for {username!r}.")

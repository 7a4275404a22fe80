"""Issue an integration key; the key is printed once and only its hash is stored."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.services import Actor
from bedside import roles
from bedside.accounts import services as accounts_services
from bedside.accounts.keys import EXPLICIT_SCOPES, SCOPES
from bedside.accounts.models import ApiKey


class Command(BaseCommand):
    help = "Issue an API key for an integration (prints the key once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="who uses the key, e.g. 'epic-prod'")
        parser.add_argument("--role", default=roles.INTEGRATION, choices=roles.ALL_ROLES)
        parser.add_argument(
            "--scopes",
            default="",
            help=f"comma-separated, of {', '.join(SCOPES)}; none given: all of the role's "
            f"but {', '.join(sorted(EXPLICIT_SCOPES))}, which must be named",
        )
        parser.add_argument(
            "--expires-in-days", type=int, default=None, help="the key stops working after this"
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="requests a minute (default BEDSIDE_KEY_RATE_LIMIT_PER_MIN; 0: unlimited)",
        )
        parser.add_argument(
            "--callback-url",
            default="",
            help="on-premises URL told when a case completes or fails",
        )

    def handle(
        self,
        *args: Any,
        name: str,
        role: str,
        scopes: str,
        expires_in_days: int | None,
        rate_limit: int | None,
        callback_url: str,
        **options: Any,
    ) -> None:
        if ApiKey.objects.filter(name=name).exists():
            raise CommandError(f"a key named {name!r} already exists")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        if rate_limit is not None and rate_limit < 0:
            raise CommandError("--rate-limit must be 0 or more")
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            issued = accounts_services.api_key_issue(
                name=name,
                role=role,
                actor=Actor(label="manage.py issue_api_key", role="admin"),
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                expires_at=expires_at,
                rate_limit_per_min=rate_limit,
                callback_url=callback_url,
            )
        except accounts_services.KeyRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(issued.key)
        expiry = f", expiring {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
        self.stderr.write(
            f"Issued key {issued.api_key.prefix}… for {name!r} with role {role}{expiry}. "
            "Store it now: it cannot be shown again."
        )
        if issued.callback_secret:
            # On stderr, so that `KEY=$(manage.py issue_api_key ...)` still reads the key alone.
            self.stderr.write(
                f"Callback secret (HMAC-SHA256 key of X-Bedside-Signature): "
                f"{issued.callback_secret}\nStore it too; `manage.py rotate_callback_secret "
                f"--name {name}` makes a new one."
            )

"""List integration keys: who, role, scopes, when used, expiry and state. Never the key."""

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from bedside import roles
from bedside.accounts.models import ApiKey
from bedside.accounts.throttling import key_limit


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "List API keys (the keys themselves are never stored, so never shown)."

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        columns = ("name", "prefix", "role", "scopes", "created", "last used", "expires")
        rows = [(*columns, "limit/min", "state")]
        for key in ApiKey.objects.select_related("user").order_by("name"):
            if key.revoked_at:
                state = f"revoked {_when(key.revoked_at)}"
            elif key.is_expired(now):
                state = "expired"
            else:
                state = "active"
            rows.append(
                (
                    key.name,
                    key.prefix,
                    roles.primary_role(key.user),
                    ",".join(key.scopes) or "all",
                    _when(key.created_at),
                    _when(key.last_used_at),
                    _when(key.expires_at),
                    str(key_limit(key) or "none"),
                    state,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )

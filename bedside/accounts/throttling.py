"""Per-key rate limit, and failed authentications per source address: fixed one-minute
windows counted in PostgreSQL.

PostgreSQL rather than a cache so that every web worker counts against the same number
without another service; one upsert per request is cheap next to the request itself.
Sessions (people) are not limited by the key limit; every password and key check is held
to its address's failure limit (``BEDSIDE_AUTH_FAILURES_PER_MIN``): past it, the address is
refused before its credentials are checked, and the rest of that minute's attempts are
counted in one ``auth.throttled`` event instead of one event each.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Literal

from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from audit.models import Action, Outcome
from audit.services import Actor, record
from bedside import roles
from bedside.accounts.models import ApiKey, RateLimitWindow, SourceFailureWindow
from bedside.http.addresses import client_address

WINDOW = timedelta(minutes=1)

_TABLE = RateLimitWindow._meta.db_table
# Table names are ours; every value is a parameter.
_COUNT_SQL = (
    f"INSERT INTO {_TABLE} (api_key_id, window_start, count) VALUES (%s, %s, 1) "  # noqa: S608
    f"ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = {_TABLE}.count + 1 "
    "RETURNING count"
)
# The same, committed without waiting for the WAL to reach the disk. Every request of a key
# updates the one row of its window, and holds that row's lock until its commit: waiting for
# a disk flush (about 8 ms here) in that lock let one key's requests through one at a time
# (intake stopped at about 120/s). A crash can lose the last few counts of a one-minute
# window, which only lets a few more requests through; nothing else commits this way.
_COUNT_NO_FLUSH_WAIT_SQL = (
    f"WITH no_flush_wait AS (SELECT set_config('synchronous_commit', 'off', true)) "  # noqa: S608
    f"INSERT INTO {_TABLE} (api_key_id, window_start, count) "
    "SELECT %s, %s, 1 FROM no_flush_wait "
    f"ON CONFLICT (api_key_id, window_start) DO UPDATE SET count = {_TABLE}.count + 1 "
    "RETURNING count"
)


_SOURCE_TABLE = SourceFailureWindow._meta.db_table
_COUNT_SOURCE_SQL = (
    f"INSERT INTO {_SOURCE_TABLE} (source_address, window_start, count) "  # noqa: S608
    "VALUES (%s, %s, 1) ON CONFLICT (source_address, window_start) "
    f"DO UPDATE SET count = {_SOURCE_TABLE}.count + 1 RETURNING count"
)


def _window(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def source_failure_count(source_address: str) -> int:
    """Count one failed authentication from this address; return the window's count."""
    window_start = _window(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SOURCE_SQL, [source_address, window_start])
        (count,) = cursor.fetchone()
    if count == 1:  # a new window: drop this address's finished ones
        SourceFailureWindow.objects.filter(
            source_address=source_address, window_start__lt=window_start
        ).delete()
    return int(count)


class _NotRead(Enum):
    NOT_READ = "not read"


# ``source_refused(failures=NOT_READ)``: the caller has not read the address's failures.
NOT_READ: Literal[_NotRead.NOT_READ] = _NotRead.NOT_READ


def failure_window_start() -> datetime:
    """The start of the current window of failed authentications: a caller that reads an
    address's failures in a query it makes anyway (the API key's lookup) passes the count
    to ``source_refused``, one query fewer on every request."""
    return _window(timezone.now())


def source_refused(
    *,
    source_address: str | None,
    method: str,
    request_id: str = "",
    failures: int | Literal[_NotRead.NOT_READ] | None = NOT_READ,
) -> bool:
    """Whether this address has used up its failures this minute. If so the attempt is
    counted (its credentials are not checked) and the first one refused writes the
    window's only ``auth.throttled`` event. ``failures``: the count of the window of
    ``failure_window_start()`` as the caller read it this request, None for no failures;
    read here when not given."""
    if not source_address:
        return False
    limit = int(settings.BEDSIDE_AUTH_FAILURES_PER_MIN)
    window_start = _window(timezone.now())
    if failures is NOT_READ:
        failures = (
            SourceFailureWindow.objects.filter(
                source_address=source_address, window_start=window_start
            )
            .values_list("count", flat=True)
            .first()
        )
    if failures is None or failures < limit:
        return False
    if source_failure_count(source_address) == limit + 1:
        record(
            actor=Actor(
                label="anonymous",
                role="none",
                source_address=source_address,
                request_id=request_id,
            ),
            action=Action.EXECUTE,
            code="auth.throttled",
            outcome=Outcome.FAILURE,
            object_type="source_address",
            object_id=source_address,
            details={
                "method": method,
                "limit_per_min": limit,
                "window_start": window_start.isoformat(),
            },
        )
    return True


def source_retry_after(now: datetime | None = None) -> float:
    now = now or timezone.now()
    return max(1.0, (_window(now) + WINDOW - now).total_seconds())


def key_limit(api_key: ApiKey) -> int:
    if api_key.rate_limit_per_min is not None:
        return api_key.rate_limit_per_min
    return int(settings.BEDSIDE_KEY_RATE_LIMIT_PER_MIN)


def count_request(api_key: ApiKey, now: datetime) -> tuple[int, datetime]:
    """Count one request in the key's current window; return the count and window start."""
    window_start = now.replace(second=0, microsecond=0)
    # Only as a transaction of its own: inside a caller's, the setting would last to that
    # transaction's commit, and its writes must wait for the disk.
    sql = _COUNT_SQL if connection.in_atomic_block else _COUNT_NO_FLUSH_WAIT_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, [api_key.pk, window_start])
        (count,) = cursor.fetchone()
    if count == 1:
        # A new window: drop this key's finished ones so the table stays small.
        RateLimitWindow.objects.filter(api_key=api_key, window_start__lt=window_start).delete()
    return count, window_start


class ApiKeyRateThrottle(BaseThrottle):
    """429 with Retry-After (seconds to the next window) once a key is over its limit."""

    def allow_request(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        limit = key_limit(api_key)
        if limit == 0:
            return True  # 0: this key is not limited
        now = timezone.now()
        count, window_start = count_request(api_key, now)
        self._wait = max(1.0, (window_start + WINDOW - now).total_seconds())
        if count == limit + 1:
            _record_limited(request, api_key, limit)
        return count <= limit

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


def _record_limited(request: Request, api_key: ApiKey, limit: int) -> None:
    """Audited once per window: the first refused request, not every one after it."""
    record(
        actor=Actor(
            label=f"key:{api_key.name}",
            role=roles.primary_role(api_key.user),
            user_id=api_key.user_id,
            source_address=client_address(request.META),
            request_id=getattr(request, "request_id", ""),
        ),
        action=Action.EXECUTE,
        code="key.rate_limited",
        outcome=Outcome.FAILURE,
        object_type="api_key",
        object_id=str(api_key.pk),
        details={"limit_per_min": limit},
    )

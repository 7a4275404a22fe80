"""Log lines for the hospital's log collector: the request id on every record, one JSON
object per line with BEDSIDE_LOG_FORMAT=json, and, in plain lines, control characters
escaped (a path with %0d%0a must not write a forged line of its own).

The request id is the one ``RequestIdMiddleware`` gave the request, or, in a worker, the id
of the request that sent the task (bedside/celery.py carries it in the task's headers).
``RequestIdFilter`` puts it on every record as ``request_id`` ("-" outside any request).
Bedside logs ids, never case contents; nothing else from a request is added.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

NO_REQUEST = "-"

current_request_id: ContextVar[str | None] = ContextVar("bedside_request_id", default=None)


# C0 and C1 control characters (CR and LF among them) and the Unicode line and paragraph
# separators: anything a log reader or terminal could take for the end of a line, or obey.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as its Python escape (``\\r``,
    ``\\n``, ``\\x1b``): readable, and on one line."""
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


class PlainFormatter(logging.Formatter):
    """The plain line with control characters escaped; an exception's traceback, added
    after it, keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record that passes (a handler filter: it sees the
    records of every logger, and lets all of them through)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get() or NO_REQUEST
        return True


_EXTRA_FIELDS = ("request_id", "case_id", "task_id", "status_code")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None and value != NO_REQUEST:
                entry[field] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)

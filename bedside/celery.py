"""The Celery application; configuration comes from Django settings (CELERY_* names)."""

import os
from typing import Any

from celery import Celery, signals

from bedside.logformat import current_request_id

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")

app = Celery("bedside")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["clinical", "clinical.ehr", "audit"])

# The message header that carries the id of the request that sent a task.
REQUEST_ID_HEADER = "bedside_request_id"


def _log_as_django_says(**_: object) -> None:
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# Worker and beat log through Django's LOGGING, as the web does: the same line format (plain
# or JSON) and the request id on every line. A receiver of this signal keeps Celery from
# installing its own handlers and line format.
signals.setup_logging.connect(_log_as_django_says, weak=False)


@signals.before_task_publish.connect(weak=False)
def _send_request_id(headers: dict[str, Any] | None = None, **_: object) -> None:
    """A task sent while a request (or a task) runs carries that request's id."""
    request_id = current_request_id.get()
    if request_id and headers is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)


def _received_request_id(task: Any) -> str | None:
    # From a worker, custom message headers are attributes of the request; from
    # ``apply(headers=...)``, they stay in ``request.headers``.
    value = getattr(task.request, REQUEST_ID_HEADER, None)
    if value is None:
        value = (getattr(task.request, "headers", None) or {}).get(REQUEST_ID_HEADER)
    return value if isinstance(value, str) and value else None


@signals.task_prerun.connect(weak=False)
def _take_request_id(task: Any = None, **_: object) -> None:
    current_request_id.set(_received_request_id(task) if task is not None else None)


@signals.task_postrun.connect(weak=False)
def _drop_request_id(**_: object) -> None:
    current_request_id.set(None)

"""The Celery application; configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")

app = Celery("bedside")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["clinical", "clinical.ehr"])


def _log_as_django_says(**_: object) -> None:
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


# With BEDSIDE_LOG_FORMAT=json, worker and beat write JSON lines as the web does: a receiver
# of this signal keeps Celery from installing its own handlers and line format.
if os.environ.get("BEDSIDE_LOG_FORMAT") == "json":
    signals.setup_logging.connect(_log_as_django_says, weak=False)

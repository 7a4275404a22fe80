"""Bedside's project package and its cases app (intake, the case API, the local stack)."""

from clinical.celery import app as celery_app

__all__ = ["celery_app"]

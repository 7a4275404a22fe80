"""Bedside's project package: settings, URLs, the Celery app, HTTP plumbing, operations,
and the two small shared apps (vault, accounts)."""

from bedside.celery import app as celery_app

__all__ = ["celery_app"]

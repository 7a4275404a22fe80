"""System checks of Bedside's own settings; ``check --deploy`` runs the deploy-tagged ones."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def data_keys_from_environment(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Patient data must not be encrypted under keys that sit on disk beside the database."""
    if settings.BEDSIDE_DATA_KEYS_FROM_ENVIRONMENT:
        return []
    return [
        Warning(
            "BEDSIDE_MASTER_KEYS and BEDSIDE_LOOKUP_KEY are not both set: patient data is "
            "encrypted under keys generated into the local state folder.",
            hint="Set both from the hospital's secret store (manage.py new_master_key makes "
            "a master key; deploy/README.md has the rotation runbook).",
            id="bedside.W001",
        )
    ]

"""Schema-driven fuzzing (schemathesis): requests generated from our OpenAPI document,
valid and invalid, never get a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from clinical.models import ApiKey
from clinical.services import IssuedKey
from tests.clinical.conftest import ehr_token

# Loaded once at collection: serving the document touches no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())


@pytest.fixture
def wsgi_in_test_transaction(db: None) -> Iterator[None]:
    # The WSGI app is called directly, not through Django's test client: like that client,
    # keep Django from closing the connection that holds the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
)
def test_no_request_the_schema_allows_or_refuses_gets_a_5xx(
    case: Any, wsgi_in_test_transaction: None, integration_key: IssuedKey, ehr_key: Any
) -> None:
    # Unlimited for the fuzzer, so that it exercises the endpoints rather than the 429.
    ApiKey.objects.filter(pk=integration_key.api_key.pk).update(rate_limit_per_min=0)
    if case.path.startswith("/cds-services"):
        # CDS Hooks calls carry the EHR's JWT, for the exact URL called (its audience).
        credential = ehr_token(ehr_key, f"http://localhost{case.formatted_path}")
    else:
        credential = integration_key.key
    case.call_and_validate(
        headers={"Authorization": f"Bearer {credential}"}, checks=[not_a_server_error]
    )

"""Schema-driven fuzzing (schemathesis): requests generated from our OpenAPI document, both
ones it allows and ones it refuses, never get a 5xx, get answers the document describes,
are refused when the document says they are invalid, and are refused without credentials."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
)

from bedside import roles
from clinical.models import Case
from tests import factories
from tests.clinical.conftest import ehr_token
from tests.fakes import FakeModelServer

# Fuzzes every operation of the API: a few minutes in all on the 2-core machine.
pytestmark = pytest.mark.slow

# Loaded once at collection: serving the document touches no database.
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
# What the document allows (positive) and what it refuses (negative), for every operation.
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection, ignored_auth]


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


@pytest.fixture
def keys(db: None) -> dict[str, str]:
    """Unlimited keys (the fuzzer should reach the endpoints, not the 429): an auditor's
    for the audit trail, a clinician's for the rest (a clinician may do everything an
    EHR's integration key may, and record reviews besides)."""
    return {
        role: factories.issued_key(f"fuzz-{role}", role, rate_limit_per_min=0).key
        for role in (roles.AUDITOR, roles.CLINICIAN)
    }


@pytest.fixture
def completed_case(keys: dict[str, str], fake_model: FakeModelServer) -> Case:
    """A completed case of the clinician key's, so that the case operations answer with
    the case (its result, its reviews) and not only with 404s."""
    submitter = User.objects.get(username=f"key:fuzz-{roles.CLINICIAN}")
    return factories.completed_case(submitter, fake_model)


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@schema.parametrize()
@settings(
    max_examples=100,  # per operation, both modes drawn from: about a minute in all
    deadline=None,
    derandomize=True,  # the same requests on every run: a failure reproduces
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_the_one_the_schema_promises(
    case: Any,
    wsgi_in_test_transaction: None,
    keys: dict[str, str],
    completed_case: Case,
    ehr_key: Any,
) -> None:
    path_parameters = case.path_parameters or {}
    if _is_uuid(path_parameters.get("case_id")):
        # A well-formed case id names the case that exists; a malformed one stays malformed.
        path_parameters["case_id"] = str(completed_case.id)
    if case.path.startswith("/cds-services"):
        # CDS Hooks calls carry the EHR's JWT, for the exact URL called (its audience).
        credential = ehr_token(ehr_key, f"http://localhost{case.formatted_path}")
    elif case.path.startswith("/api/v1/audit/"):
        credential = keys[roles.AUDITOR]
    else:
        credential = keys[roles.CLINICIAN]
    case.call_and_validate(headers={"Authorization": f"Bearer {credential}"}, checks=CHECKS)

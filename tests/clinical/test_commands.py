"""The management commands a newcomer and hospital IT type."""

from __future__ import annotations

import io
import re

from django.core.management import call_command
from rest_framework.test import APIClient

from bedside.accounts.models import ApiKey


def issued_key(output: str) -> str:
    match = re.search(r"bsk_\S+", output)
    assert match, output
    return match.group(0)


def test_issue_api_key_prints_a_working_key_once_and_stores_only_its_hash(db: None) -> None:
    out = io.StringIO()
    call_command(
        "issue_api_key",
        "--name",
        "epic-test",
        "--role",
        "integration",
        stdout=out,
        stderr=io.StringIO(),
    )
    key = issued_key(out.getvalue())
    stored = ApiKey.objects.get(name="epic-test")
    assert key not in stored.key_hash and len(stored.key_hash) == 64
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/cases/").status_code == 200


def test_seed_demo_twice_retires_the_old_demo_key(db: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)
    old_key, new_key = issued_key(first.getvalue()), issued_key(second.getvalue())
    old, new = APIClient(), APIClient()
    old.credentials(HTTP_AUTHORIZATION=f"Bearer {old_key}")
    new.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    assert old.get("/api/v1/cases/").status_code == 401
    assert new.get("/api/v1/cases/").status_code == 200
    assert "clinician" in second.getvalue()

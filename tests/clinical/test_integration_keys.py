"""Integration keys: scopes, expiry, revocation at once, a per-key rate limit, the admin
page and the commands hospital IT types; every key action audited."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside import roles
from bedside.accounts.models import ApiKey
from bedside.accounts.selectors import api_key_by_prefix
from bedside.accounts.services import IssuedKey, KeyRefused, api_key_settings_check
from tests.factories import load_case

URL = "/api/v1/cases/"


def issue(*args: str) -> str:
    out = io.StringIO()
    call_command("issue_api_key", *args, stdout=out, stderr=io.StringIO())
    match = re.search(r"bsk_\S+", out.getvalue())
    assert match
    return match.group(0)


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_issue_with_scopes_expiry_limit_and_callback_is_stored_and_audited(db: None) -> None:
    issue(
        "--name", "epic", "--scopes", "cases:read,cases:submit", "--expires-in-days", "30",
        "--rate-limit", "120", "--callback-url", "http://10.20.30.40:8080/bedside",
    )  # fmt: skip
    key = ApiKey.objects.get(name="epic")
    assert key.scopes == ["cases:read", "cases:submit"]
    assert timedelta(days=29) < key.expires_at - timezone.now() <= timedelta(days=30)
    assert key.rate_limit_per_min == 120
    assert key.callback_url == "http://10.20.30.40:8080/bedside"
    event = AuditEvent.objects.get(code="key.issued")
    assert event.details["scopes"] == ["cases:read", "cases:submit"]
    assert event.details["callback"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scopes", "cases:delete"], "unknown scope"),
        # CDS Hooks calls are signed JWTs, never API keys: such a scope would limit nothing.
        (["--scopes", "cds-hooks"], "unknown scope"),
        (["--callback-url", "http://8.8.8.8/hook"], "public address"),
        (["--callback-url", "ftp://10.0.0.1/x"], "scheme"),
        (["--expires-in-days", "0"], "at least 1"),
    ],
)
def test_issue_refuses_bad_settings(db: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        issue("--name", "bad", *args)
    assert not ApiKey.objects.exists()


def test_revoked_key_is_refused_at_once_and_both_are_audited(db: None) -> None:
    key = issue("--name", "lab")
    client = bearer(key)
    assert client.get(URL).status_code == 200
    out = io.StringIO()
    call_command("revoke_api_key", "--name", "lab", stdout=out)
    assert "Revoked" in out.getvalue()
    response = client.get(URL)
    assert response.status_code == 401
    assert AuditEvent.objects.filter(code="key.revoked").count() == 1
    failed = AuditEvent.objects.get(code="auth.failed")
    assert failed.outcome == "failure"
    prefix = ApiKey.objects.get().prefix
    assert failed.details == {"method": "api_key", "reason": "revoked", "prefix": prefix}
    assert key not in str(failed.details)
    again = io.StringIO()
    call_command("revoke_api_key", "--prefix", ApiKey.objects.get().prefix, stdout=again)
    assert "already revoked" in again.getvalue()
    assert AuditEvent.objects.filter(code="key.revoked").count() == 1
    assert verify_chain() is None


def test_a_role_taken_from_a_keys_user_holds_at_the_next_request(
    integration_key: IssuedKey,
) -> None:
    """The roles are read with the key (one query), still afresh on every request."""
    client = bearer(integration_key.key)
    assert client.post(URL, load_case(), format="json").status_code == 202
    integration_key.api_key.user.groups.clear()
    assert client.post(URL, load_case(), format="json").status_code == 403
    roles.grant_role(integration_key.api_key.user, roles.AUDITOR)  # may read, not submit
    assert client.get(URL).status_code == 200
    assert client.post(URL, load_case(), format="json").status_code == 403


def test_the_key_read_with_its_user_and_roles_in_one_query_is_the_key_the_orm_reads(
    db: None,
) -> None:
    """The key's lookup is written out in SQL (issue 20): every field must come back as the
    ORM reads it, converted (JSON scopes, dates), the callback secret deferred and still
    readable."""
    issue(
        "--name", "epic", "--scopes", "cases:read,cases:submit", "--expires-in-days", "30",
        "--rate-limit", "120", "--callback-url", "http://10.20.30.40:8080/bedside",
    )  # fmt: skip
    stored = ApiKey.objects.select_related("user").get(name="epic")
    found = api_key_by_prefix(prefix=stored.prefix, source_address="10.0.0.7")
    assert found is not None
    for field in ApiKey._meta.concrete_fields:
        assert getattr(found.api_key, field.attname) == getattr(stored, field.attname), field
    assert found.api_key.callback_secret  # deferred, read when a callback is signed
    for field in User._meta.concrete_fields:
        assert getattr(found.api_key.user, field.attname) == getattr(stored.user, field.attname)
    assert roles.roles_of(found.api_key.user) == {roles.INTEGRATION}
    assert found.source_failures is None
    assert api_key_by_prefix(prefix="000000000000", source_address=None) is None


def test_expired_key_is_refused_and_audited(integration_key: IssuedKey) -> None:
    ApiKey.objects.filter(pk=integration_key.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = bearer(integration_key.key).get(URL)
    assert response.status_code == 401
    assert response.json()["errors"][0]["msg"] == "this API key has expired"
    assert AuditEvent.objects.get(code="auth.failed").details["reason"] == "expired"


def test_unknown_key_is_audited_without_the_secret(db: None) -> None:
    response = bearer("bsk_abcdef123456_notthesecret").get(URL)
    assert response.status_code == 401
    event = AuditEvent.objects.get(code="auth.failed")
    assert event.details == {
        "method": "api_key",
        "reason": "unknown_key",
        "prefix": "abcdef123456",
    }
    assert "notthesecret" not in str(event.details)


def test_scopes_limit_what_a_key_may_do(db: None) -> None:
    reader = bearer(issue("--name", "reader", "--scopes", "cases:read"))
    assert reader.get(URL).status_code == 200
    assert reader.post(URL, load_case(), format="json").status_code == 403
    submitter = bearer(issue("--name", "submitter", "--scopes", "cases:submit"))
    assert submitter.post(URL, load_case(), format="json").status_code == 202
    assert submitter.get(URL).status_code == 403


def test_rate_limit_answers_429_with_retry_after_and_audits_once(
    integration_key: IssuedKey,
) -> None:
    ApiKey.objects.filter(pk=integration_key.api_key.pk).update(rate_limit_per_min=3)
    client = bearer(integration_key.key)
    codes = [client.get(URL).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    limited = client.get(URL)
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["errors"][0]["msg"].startswith("Request was throttled")
    assert AuditEvent.objects.filter(code="key.rate_limited").count() == 1


def test_site_default_rate_limit_applies_and_people_are_not_limited(
    integration_key: IssuedKey, alice: User, settings: Any
) -> None:
    settings.BEDSIDE_KEY_RATE_LIMIT_PER_MIN = 2
    client = bearer(integration_key.key)
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    person = APIClient()
    person.force_login(alice)
    assert {person.get(URL).status_code for _ in range(4)} == {200}


def test_list_api_keys_shows_state_never_the_key(db: None) -> None:
    key = issue("--name", "alpha", "--scopes", "cases:read")
    issue("--name", "beta")
    call_command("revoke_api_key", "--name", "beta", stdout=io.StringIO())
    out = io.StringIO()
    call_command("list_api_keys", stdout=out)
    text = out.getvalue()
    alpha = next(line for line in text.splitlines() if line.startswith("alpha"))
    beta = next(line for line in text.splitlines() if line.startswith("beta"))
    assert "cases:read" in alpha and alpha.endswith("active")
    assert "revoked" in beta
    assert key not in text


@pytest.fixture
def admin_browser(db: None) -> Client:
    admin = User.objects.create_superuser("root", password="correct horse battery")
    roles.grant_role(admin, roles.ADMIN)
    browser = Client()
    browser.force_login(admin)
    return browser


def test_admin_page_lists_changes_and_revokes_keys_audited(
    admin_browser: Client, integration_key: IssuedKey
) -> None:
    key = integration_key.api_key
    assert admin_browser.get("/admin/accounts/apikey/").status_code == 200
    assert admin_browser.get("/admin/accounts/apikey/add/").status_code == 403
    response = admin_browser.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {"scopes": ["cases:read"], "rate_limit_per_min": "30", "callback_url": ""},
    )
    assert response.status_code == 302, response.content[:2000]
    key.refresh_from_db()
    assert key.scopes == ["cases:read"] and key.rate_limit_per_min == 30
    changed = AuditEvent.objects.get(code="key.changed")
    assert set(changed.details["fields"]) == {"scopes", "rate_limit_per_min"}
    refused = admin_browser.post(
        f"/admin/accounts/apikey/{key.pk}/change/",
        {"callback_url": "http://8.8.8.8/x"},
    )
    assert refused.status_code == 200 and b"public address" in refused.content
    admin_browser.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert bearer(integration_key.key).get(URL).status_code == 401
    assert AuditEvent.objects.filter(code="key.revoked").count() == 1


def test_a_refused_callback_url_names_the_callback_allow_list(db: None) -> None:
    with pytest.raises(KeyRefused) as refused:
        api_key_settings_check(scopes=[], callback_url="http://8.8.8.8/hook")
    assert "BEDSIDE_CALLBACK_ALLOWED_HOSTS" in str(refused.value)
    assert "BEDSIDE_MODEL_ALLOWED_HOSTS" not in str(refused.value)

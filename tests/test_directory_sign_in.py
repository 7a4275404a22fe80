"""Sign-in with the hospital's directory (issue 19), against a real OpenLDAP ``slapd``
started by the tests (``tests/directory_server.py``): people created at their first
sign-in with the roles of their groups, roles read again at every sign-in, disabled and
removed people refused and their sessions ended, one lockout for every way of signing in,
and an unreachable directory that names itself while the break-glass account still works.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from audit.services import verify_chain
from bedside import roles
from bedside.accounts import sso
from bedside.accounts.identity import SESSION_METHOD_KEY
from tests.directory_server import (
    COMPLIANCE,
    DIRECTORY_BACKEND,
    ED_PHYSICIANS,
    PASSWORDS,
    RECHECK_MIDDLEWARE,
    DirectoryServer,
    directory_fixture,  # noqa: F401 (fixture)
    directory_server_fixture,  # noqa: F401 (fixture)
    directory_settings_apply,
    free_port,
)
from tests.factories import issued_key
from tests.fakes import FakeModelServer

# slapd is a real server process of the tests' own: the stack tier, as the brokers are.
pytestmark = [pytest.mark.stack, pytest.mark.django_db]
LOCAL_PASSWORD = "break glass local pass"


def sign_in(client: Client, username: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def events_after(first_id: int, code: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=first_id, code=code).order_by("id"))


def last_event_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_first_sign_in_creates_the_person_with_the_role_of_their_directory_group(
    directory: DirectoryServer,
) -> None:
    before = last_event_id()
    client = Client()
    assert sign_in(client, "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    ward = User.objects.get(username="dr.ward")
    assert (ward.first_name, ward.last_name) == ("Dana", "Ward")
    assert ward.email == "dr.ward@hospital.local"
    assert not ward.has_usable_password()  # no local password to go stale
    assert not ward.is_staff and not ward.is_superuser  # never from the directory
    assert roles.roles_of(ward) == {roles.CLINICIAN}
    (changed,) = events_after(before, "role.changed")
    assert (changed.details["old"], changed.details["new"], changed.details["source"]) == (
        [],
        ["clinician"],
        "directory",
    )
    assert changed.actor_label == "system:directory"
    (succeeded,) = events_after(before, "login.succeeded")
    assert succeeded.details == {"method": "directory"}
    assert client.session[SESSION_METHOD_KEY] == "directory"
    assert client.get("/cases/new/").status_code == 200  # a clinician's screen
    assert verify_chain() is None


def test_a_person_taken_out_of_their_group_loses_the_role_at_the_next_sign_in(
    directory: DirectoryServer,
) -> None:
    assert sign_in(Client(), "aud.smith", PASSWORDS["aud.smith"]).status_code == 302
    assert roles.roles_of(User.objects.get(username="aud.smith")) == {roles.AUDITOR}
    directory.remove_member(COMPLIANCE, "aud.smith")
    directory.add_member(ED_PHYSICIANS, "aud.smith")
    before = last_event_id()
    assert sign_in(Client(), "aud.smith", PASSWORDS["aud.smith"]).status_code == 302
    assert roles.roles_of(User.objects.get(username="aud.smith")) == {roles.CLINICIAN}
    (changed,) = events_after(before, "role.changed")
    assert changed.details["old"] == ["auditor"]
    assert changed.details["new"] == ["clinician"]
    assert changed.details["revoked"] == ["auditor"]

    directory.remove_member(ED_PHYSICIANS, "aud.smith")
    client = Client()
    assert sign_in(client, "aud.smith", PASSWORDS["aud.smith"]).status_code == 302
    assert roles.roles_of(User.objects.get(username="aud.smith")) == set()
    assert client.get("/audit/").status_code in (302, 403)


def test_a_person_in_no_mapped_group_signs_in_with_no_role_and_is_told_to_ask_it(
    directory: DirectoryServer,
) -> None:
    client = Client()
    assert sign_in(client, "nurse.jones", PASSWORDS["nurse.jones"]).status_code == 302
    assert roles.roles_of(User.objects.get(username="nurse.jones")) == set()
    page = client.get("/").content.decode()
    assert "You have no role in Bedside yet" in page
    assert client.get("/cases/").status_code in (302, 403)


def test_a_disabled_directory_account_is_refused(directory: DirectoryServer) -> None:
    before = last_event_id()
    response = sign_in(Client(), "dr.gone", PASSWORDS["dr.gone"])
    assert response.status_code == 200  # the form again, with its error
    assert not User.objects.filter(username="dr.gone").exists()
    (failed,) = events_after(before, "login.failed")
    assert failed.object_id == "dr.gone"
    assert failed.details["reason"] == (
        "neither in the directory nor a local account with this password"
    )


def test_a_person_disabled_after_signing_in_before_is_refused_once_with_the_reason(
    directory: DirectoryServer,
) -> None:
    assert sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    directory.disable("dr.ward")
    before = last_event_id()
    response = sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"])
    assert response.status_code == 200
    # One attempt, one event: the local accounts were not asked a second time.
    (failed,) = events_after(before, "login.failed")
    assert failed.details["method"] == "directory"
    assert failed.details["reason"] == "not found in the directory (disabled or removed there)"

    directory.reset()
    directory.remove_person("dr.ward")
    assert sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).status_code == 200


def test_a_single_sign_on_person_typing_a_password_is_not_taken_for_a_directory_person(
    directory: DirectoryServer, settings: Any
) -> None:
    """Made by single sign-on, they have no usable local password either; not in the
    directory, they are not a directory person disabled there: the local accounts decide."""
    settings.BEDSIDE_OIDC_ISSUER = "https://login.hospital.local/realms/hospital"
    sso.sso_user_sign_in(
        claims={"sub": "subject-of-dr-sso", "preferred_username": "dr.sso"}, request=None
    )
    assert not User.objects.get(username="dr.sso").has_usable_password()
    before = last_event_id()
    assert sign_in(Client(), "dr.sso", "a password of some kind").status_code == 200
    (failed,) = events_after(before, "login.failed")
    assert failed.details["method"] == "local"
    assert failed.details["reason"] == (
        "neither in the directory nor a local account with this password"
    )


def test_an_integration_keys_name_typed_as_a_username_is_not_taken_for_a_directory_person(
    directory: DirectoryServer,
) -> None:
    """A key's service user has no usable password, like a directory person, but is
    Bedside's own account: not "removed in the directory", and no password signs it in."""
    issued = issued_key("ehr-lab")
    assert not issued.api_key.user.has_usable_password()
    before = last_event_id()
    assert sign_in(Client(), issued.api_key.user.username, "a password").status_code == 200
    (failed,) = events_after(before, "login.failed")
    assert failed.details["method"] == "local"
    assert failed.details["reason"] == (
        "neither in the directory nor a local account with this password"
    )


def test_a_local_password_never_signs_a_directory_person_in(directory: DirectoryServer) -> None:
    User.objects.create_user("dr.ward", password=LOCAL_PASSWORD)  # from before the directory
    assert sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    assert not User.objects.get(username="dr.ward").has_usable_password()
    assert sign_in(Client(), "dr.ward", LOCAL_PASSWORD).status_code == 200


def test_five_wrong_directory_passwords_lock_the_username_like_a_local_one(
    directory: DirectoryServer, settings: Any
) -> None:
    before = last_event_id()
    for _ in range(settings.BEDSIDE_LOGIN_MAX_FAILURES):
        assert sign_in(Client(), "dr.ward", "not the password").status_code == 200
    failed = events_after(before, "login.failed")
    assert len(failed) == settings.BEDSIDE_LOGIN_MAX_FAILURES  # one each, not two
    assert {e.details["reason"] for e in failed} == {"wrong password"}
    assert {e.details["method"] for e in failed} == {"directory"}
    locked = sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"])
    assert locked.status_code == 200
    assert "Too many failed sign-ins for this username" in locked.content.decode()
    assert len(events_after(before, "login.refused")) == 1
    assert not User.objects.filter(username="dr.ward").exists()


def test_an_unreachable_directory_is_named_and_the_break_glass_account_still_signs_in(
    directory: DirectoryServer, settings: Any
) -> None:
    settings.BEDSIDE_LDAP_URI = f"ldap://127.0.0.1:{free_port()}"  # nothing listens there
    response = sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"])
    assert response.status_code == 200
    page = response.content.decode()
    assert f"The hospital directory ({settings.BEDSIDE_LDAP_URI}) is not answering" in page
    assert "break-glass account" in page
    User.objects.create_superuser("breakglass", password=LOCAL_PASSWORD)
    client = Client()
    assert sign_in(client, "breakglass", LOCAL_PASSWORD).status_code == 302
    assert client.session[SESSION_METHOD_KEY] == "local"


def test_a_directory_that_takes_the_connection_but_never_answers_fails_within_its_timeout(
    directory: DirectoryServer, settings: Any
) -> None:
    """A hung directory (a firewall that drops, a wedged server) is the slow case: without
    BEDSIDE_LDAP_TIMEOUT_S the sign-in would wait for ever; with it, the page names it."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the connection; nobody ever reads it
        settings.BEDSIDE_LDAP_URI = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        settings.BEDSIDE_LDAP_TIMEOUT_S = 1
        page = sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).content.decode()
    assert "is not answering" in page


def test_readiness_reports_the_directory_without_failing_on_it(
    directory: DirectoryServer, settings: Any, fake_model: FakeModelServer
) -> None:
    up = APIClient().get("/readyz")
    assert up.status_code == 200, up.json()
    assert up.json()["reported"]["directory"] == {"ok": True, "detail": "ok"}
    settings.BEDSIDE_LDAP_URI = f"ldap://127.0.0.1:{free_port()}"
    down = APIClient().get("/readyz")
    assert down.status_code == 200
    assert down.json()["reported"]["directory"]["ok"] is False
    assert "unreachable" in down.json()["reported"]["directory"]["detail"]


def test_a_session_ends_at_the_first_request_after_the_recheck_once_disabled(
    directory: DirectoryServer, settings: Any
) -> None:
    client = Client()
    assert sign_in(client, "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    directory.disable("dr.ward")
    # Within BEDSIDE_LDAP_RECHECK_S of being found at sign-in: not looked up again yet.
    assert client.get("/cases/new/").status_code == 200
    settings.BEDSIDE_LDAP_RECHECK_S = 0  # the interval has passed
    before = last_event_id()
    response = client.get("/cases/new/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert "_auth_user_id" not in client.session
    (ended,) = events_after(before, "session.ended")
    assert ended.details == {
        "user": "dr.ward",
        "reason": "disabled or removed in the directory",
        "method": "directory",
    }


def test_a_session_is_kept_with_a_warning_when_the_directory_cannot_be_asked(
    directory: DirectoryServer, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    assert sign_in(client, "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    settings.BEDSIDE_LDAP_RECHECK_S = 0
    settings.BEDSIDE_LDAP_URI = f"ldap://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="bedside.accounts.directory"):
        assert client.get("/cases/new/").status_code == 200
    assert "the session is kept" in caplog.text
    assert client.session[SESSION_METHOD_KEY] == "directory"


def test_ldaps_checks_the_directory_certificate_against_the_hospital_ca(
    directory: DirectoryServer, settings: Any
) -> None:
    settings.BEDSIDE_LDAP_URI = directory.ldaps_uri
    settings.BEDSIDE_LDAP_CA_FILE = str(directory.ca_file)
    assert sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).status_code == 302
    # A CA that did not sign the directory's certificate: no sign-in over it.
    settings.BEDSIDE_LDAP_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"
    page = sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).content.decode()
    assert "is not answering" in page


def test_start_tls_with_the_hospital_ca(directory: DirectoryServer, settings: Any) -> None:
    settings.BEDSIDE_LDAP_START_TLS = True
    settings.BEDSIDE_LDAP_CA_FILE = str(directory.ca_file)
    assert sign_in(Client(), "dr.ward", PASSWORDS["dr.ward"]).status_code == 302


def test_a_wrong_group_type_stops_the_start(
    directory_server: DirectoryServer, settings: Any
) -> None:
    with pytest.raises(ImproperlyConfigured, match="BEDSIDE_LDAP_GROUP_TYPE"):
        directory_settings_apply(settings, directory_server, BEDSIDE_LDAP_GROUP_TYPE="posix")
    from bedside.accounts.directory import check_configuration  # the `directory` extra

    settings.BEDSIDE_LDAP_GROUP_TYPE = "nested-activeDirectory"
    check_configuration()


def _settings_in_a_fresh_process(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEDSIDE_LDAP_")}
    env |= {"DJANGO_SETTINGS_MODULE": "bedside.settings", **extra_env}
    script = (
        "import django, json, sys; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.AUTHENTICATION_BACKENDS, settings.MIDDLEWARE, "
        "'django_auth_ldap' in sys.modules]))"
    )
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.slow  # three fresh processes import Django
def test_the_directory_joins_sign_in_only_when_its_uri_is_set_and_bad_settings_stop_the_start(
    directory_server: DirectoryServer,
) -> None:
    unset = _settings_in_a_fresh_process({})
    assert unset.returncode == 0, unset.stderr
    backends, middleware, imported = json.loads(unset.stdout.splitlines()[-1])
    assert backends == ["bedside.accounts.sign_in.SignInBackend"]
    assert RECHECK_MIDDLEWARE not in middleware
    assert not imported  # the `directory` extra is optional where there is no directory

    environment = {k: str(v) for k, v in directory_server.settings().items() if v != ""}
    environment["BEDSIDE_LDAP_START_TLS"] = "false"
    good = _settings_in_a_fresh_process(environment)
    assert good.returncode == 0, good.stderr
    backends, middleware, imported = json.loads(good.stdout.splitlines()[-1])
    assert backends == [DIRECTORY_BACKEND, "bedside.accounts.sign_in.SignInBackend"]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware[auth + 1] == RECHECK_MIDDLEWARE

    for name, value in [
        ("BEDSIDE_LDAP_ROLE_GROUPS", "nurse=cn=nursing,ou=groups,dc=hospital,dc=local"),
        ("BEDSIDE_LDAP_URI", "http://dc1.hospital.local"),
        ("BEDSIDE_LDAP_USER_SEARCH_BASE", ""),
    ]:
        bad = _settings_in_a_fresh_process({**environment, name: value})
        assert bad.returncode != 0
        assert "ImproperlyConfigured" in bad.stderr and name in bad.stderr

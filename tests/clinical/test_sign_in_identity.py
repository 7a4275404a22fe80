"""What every sign-in path shares (issue 19): how a person signed in, recorded on the
sign-in event and the session; roles replaced from the hospital's groups in one
``role.changed`` event with the old and the new roles; ``session.ended`` on signing out;
a person with no role told to ask IT."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from audit.models import AuditEvent
from audit.services import SYSTEM, verify_chain
from bedside import roles
from bedside.accounts.identity import (
    SESSION_METHOD_KEY,
    SignInMethod,
    method_label,
    parse_role_groups,
    roles_from_groups,
    user_roles_replace,
)
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"  # tests/factories.py user_with_role

ED = "cn=ed-physicians,ou=groups,dc=hospital,dc=local"
COMPLIANCE = "cn=compliance,ou=groups,dc=hospital,dc=local"


def test_role_groups_setting_reads_dns_with_commas_and_equals_signs() -> None:
    text = f"clinician={ED}; auditor={COMPLIANCE}\nclinician=cn=icu,ou=groups,dc=hospital,dc=local"
    assert parse_role_groups(text, setting="BEDSIDE_LDAP_ROLE_GROUPS") == [
        ("clinician", ED),
        ("auditor", COMPLIANCE),
        ("clinician", "cn=icu,ou=groups,dc=hospital,dc=local"),
    ]


@pytest.mark.parametrize("text", ["nurse=cn=nurses", "clinician", "clinician="])
def test_a_wrong_role_groups_entry_stops_the_start_naming_the_setting(text: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="BEDSIDE_LDAP_ROLE_GROUPS"):
        parse_role_groups(text, setting="BEDSIDE_LDAP_ROLE_GROUPS")


def test_groups_give_roles_whatever_the_case_and_spacing_of_the_dn() -> None:
    mapping = parse_role_groups(f"clinician={ED};auditor={COMPLIANCE}", setting="X")
    held = ["CN=ED-Physicians, OU=Groups, DC=hospital, DC=local", "cn=radiology,dc=x"]
    assert roles_from_groups(held, mapping) == {"clinician"}
    assert roles_from_groups([], mapping) == set()


def test_roles_from_the_directory_replace_the_old_ones_in_one_event() -> None:
    dana = user_with_role("dana", roles.CLINICIAN)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    changed = user_roles_replace(
        user=dana, new_roles={roles.AUDITOR}, method=SignInMethod.DIRECTORY, actor=SYSTEM
    )
    assert changed
    assert roles.roles_of(User.objects.get(pk=dana.pk)) == {roles.AUDITOR}
    (event,) = AuditEvent.objects.filter(id__gt=before)
    assert event.code == "role.changed"
    assert event.details == {
        "user": "dana",
        "old": ["clinician"],
        "new": ["auditor"],
        "granted": ["auditor"],
        "revoked": ["clinician"],
        "source": "directory",
    }
    # The same roles again: nothing changes and nothing is written.
    assert not user_roles_replace(
        user=dana, new_roles={roles.AUDITOR}, method=SignInMethod.DIRECTORY, actor=SYSTEM
    )
    assert AuditEvent.objects.filter(id__gt=event.id).count() == 0
    assert verify_chain() is None


def test_a_group_change_in_the_admin_records_the_old_and_new_roles() -> None:
    erin = user_with_role("erin", roles.CLINICIAN)
    erin.groups.add(Group.objects.get_or_create(name=roles.AUDITOR)[0])
    event = AuditEvent.objects.filter(code="role.changed").order_by("-id").first()
    assert event is not None
    assert (event.details["old"], event.details["new"]) == (["clinician"], ["auditor", "clinician"])


def test_a_sign_in_records_how_the_person_signed_in_and_signing_out_ends_the_session(
    alice: User,
) -> None:
    client = Client()
    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    signed_in = AuditEvent.objects.filter(code="login.succeeded").order_by("-id").first()
    assert signed_in is not None and signed_in.details == {"method": "local"}
    assert client.session[SESSION_METHOD_KEY] == "local"
    assert client.post("/accounts/logout/").status_code in (200, 302)
    assert "_auth_user_id" not in client.session
    ended = AuditEvent.objects.filter(code="session.ended").order_by("-id").first()
    assert ended is not None
    assert (ended.actor_label, ended.details) == (
        "alice",
        {"user": "alice", "reason": "signed out", "method": "local"},
    )


def test_method_labels_are_the_auditors_words() -> None:
    assert method_label("directory") == "hospital directory"
    assert method_label("sso") == "single sign-on"
    assert method_label(None) == "local password"  # events from before methods were kept


def test_a_person_with_no_role_is_told_to_ask_it_and_shown_nothing() -> None:
    User.objects.create_user("frank", password=PASSWORD)
    client = Client()
    assert (
        client.post("/accounts/login/", {"username": "frank", "password": PASSWORD}).status_code
        == 302
    )
    page = client.get("/").content.decode()
    assert "You have no role in Bedside yet" in page
    assert "IT service desk" in page
    assert client.get("/cases/").status_code in (302, 403)
    assert client.get("/audit/").status_code in (302, 403)

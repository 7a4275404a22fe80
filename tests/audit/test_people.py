"""The auditors' people screen (issue 19): each person, their roles, when and how they last
signed in (local password, hospital directory, single sign-on), active or disabled."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User

from audit.actors import actor_for
from audit.models import Action
from audit.services import record
from bedside import roles
from tests.factories import issued_key, signed_in, user_with_role

pytestmark = pytest.mark.django_db


def signed_in_with(user: User, method: str | None) -> None:
    """A ``login.succeeded`` as the sign-in code writes it; ``method`` None: as events
    written before the directory and single sign-on existed (no method named)."""
    record(
        actor=actor_for(user),
        action=Action.EXECUTE,
        code="login.succeeded",
        object_type="user",
        object_id=user.get_username(),
        details={} if method is None else {"method": method},
    )


def rows(html: str) -> dict[str, str]:
    """Each person's row, by username."""
    found = re.findall(r'<tr>\s*<td class="key">([^<\s]+)(.*?)</tr>', html, re.S)
    return {name: rest for name, rest in found}


def test_each_person_shows_how_they_last_signed_in(carol: User, alice: User, bob: User) -> None:
    signed_in_with(alice, "local")
    signed_in_with(alice, "directory")  # the latest counts
    signed_in_with(bob, "sso")
    old_timer = user_with_role("olga", roles.CLINICIAN)
    signed_in_with(old_timer, None)
    user_with_role("nina", roles.CLINICIAN)  # never signed in
    gone = user_with_role("gary", roles.CLINICIAN)
    gone.is_active = False
    gone.save()
    key = issued_key("ehr-people")

    response = signed_in(carol).get("/audit/people/")
    html = response.content.decode()
    assert response.status_code == 200
    people = rows(html)
    assert "Hospital directory" in people["alice"] and "clinician" in people["alice"]
    assert "Single sign-on" in people["bob"]
    assert "Local password" in people["olga"]
    assert "never signed in" in people["nina"]
    assert "<strong>disabled</strong>" in people["gary"] and "active" in people["alice"]
    assert "auditor" in people["carol"]
    # Integration keys' service users are no people.
    assert key.api_key.user.get_username() not in people
    assert set(people) == {"alice", "bob", "carol", "gary", "nina", "olga"}


def test_people_are_searched_by_name(carol: User, alice: User, bob: User) -> None:
    alice.first_name, alice.last_name = "Alice", "Okafor"
    alice.save()
    client = signed_in(carol)
    assert set(rows(client.get("/audit/people/?name=okaf").content.decode())) == {"alice"}
    assert set(rows(client.get("/audit/people/?name=BO").content.decode())) == {"bob"}
    nobody = client.get("/audit/people/?name=zed").content.decode()
    assert rows(nobody) == {}
    assert "No one's name contains" in nobody


def test_the_people_screen_is_paginated(carol: User) -> None:
    for i in range(26):
        User.objects.create_user(username=f"person{i:02d}")
    client = signed_in(carol)
    first = client.get("/audit/people/").content.decode()
    assert len(rows(first)) == 25 and "Page 1 of 2 (27 in all)" in first
    assert len(rows(client.get("/audit/people/?page=2").content.decode())) == 2


def test_only_auditors_and_admins_see_people(alice: User) -> None:
    assert signed_in(alice).get("/audit/people/").status_code == 403
    admin = user_with_role("dora", roles.ADMIN)
    assert signed_in(admin).get("/audit/people/").status_code == 200


def test_an_overlong_search_is_a_400_naming_it(carol: User) -> None:
    response = signed_in(carol).get("/audit/people/", {"name": "x" * 151})
    assert response.status_code == 400
    assert "<strong>name</strong>" in response.content.decode()

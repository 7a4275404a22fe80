"""The auditors' break-glass review list (issue 19): every emergency access stays on it,
waiting, until an auditor marks it reviewed with their own note."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from audit.actors import actor_for
from audit.models import AuditEvent
from bedside import roles
from clinical import services
from clinical.models import Case
from tests.factories import EMERGENCY_REASON as REASON
from tests.factories import emergency_access, signed_in, submitted_case, user_with_role

pytestmark = pytest.mark.django_db

NOTE = "Checked the ED rota: bob was covering that night. Justified."


def entries(html: str) -> list[str]:
    return re.findall(r'<article class="panel emergency-entry.*?</article>', html, re.S)


def test_an_emergency_access_waits_on_the_list_with_its_reason_and_views(
    completed_case: Case, bob: User, carol: User
) -> None:
    grant = emergency_access(completed_case, bob)
    for _ in range(2):  # bob opens the case twice while the access lasts
        assert signed_in(bob).get(f"/cases/{completed_case.id}/").status_code == 200
    signed_in(carol).get(f"/audit/cases/{completed_case.id}/")  # an auditor's read: not his

    response = signed_in(carol).get("/audit/emergency-access/")
    html = response.content.decode()
    assert response.status_code == 200
    (entry,) = entries(html)
    assert "emergency-unreviewed" in entry
    assert "bob opened" in entry and "submitted by alice" in entry
    assert f'href="/audit/cases/{completed_case.id}/"' in entry
    assert REASON in entry
    assert f"{grant.granted_at:%Y-%m-%d %H:%M} UTC" in entry
    assert f"{grant.expires_at:%Y-%m-%d %H:%M} UTC" in entry
    assert '<span class="emergency-views">2</span> times' in entry
    assert "Mark reviewed" in entry
    assert '<strong id="emergency-unreviewed-count">1</strong>' in html


def test_views_outside_the_access_are_not_counted(
    completed_case: Case, bob: User, carol: User, settings: Any
) -> None:
    settings.BEDSIDE_EMERGENCY_ACCESS_MINUTES = 30
    emergency_access(completed_case, bob, minutes_ago=45)  # over 15 minutes ago
    services.case_viewed(case=completed_case, actor=actor_for(bob))  # now: after it ended
    html = signed_in(carol).get("/audit/emergency-access/").content.decode()
    (entry,) = entries(html)
    assert '<span class="emergency-views">0</span> times' in entry


def test_the_overview_counts_the_accesses_waiting_for_review(
    completed_case: Case, bob: User, carol: User
) -> None:
    emergency_access(completed_case, bob)
    emergency_access(completed_case, bob)
    html = signed_in(carol).get("/audit/").content.decode()
    assert '<strong id="emergency-unreviewed">2</strong> emergency accesses waiting' in html


def test_marking_reviewed_needs_the_auditors_own_note(
    completed_case: Case, bob: User, carol: User
) -> None:
    grant = emergency_access(completed_case, bob)
    client = signed_in(carol)
    for note in ("", "   ", "ok"):
        response = client.post(f"/audit/emergency-access/{grant.pk}/review/", {"note": note})
        html = response.content.decode()
        assert response.status_code == 400
        assert "Not marked reviewed" in html
        error = re.search(rf'id="note-{grant.pk}-error">(.*?)</div>', html, re.S)
        assert error is not None and "at least 10 characters" in error.group(1)
    grant.refresh_from_db()
    assert grant.reviewed_at is None
    assert not AuditEvent.objects.filter(code="case.emergency_access_reviewed").exists()


def test_marked_reviewed_it_leaves_the_waiting_list_and_stays_under_reviewed(
    completed_case: Case, bob: User, carol: User
) -> None:
    grant = emergency_access(completed_case, bob)
    client = signed_in(carol)
    response = client.post(f"/audit/emergency-access/{grant.pk}/review/", {"note": f" {NOTE} "})
    assert response.status_code == 302
    assert response["Location"] == "/audit/emergency-access/"

    grant.refresh_from_db()
    assert (grant.reviewed_by, grant.review_note) == (carol, NOTE)
    assert grant.reviewed_at is not None
    (event,) = AuditEvent.objects.filter(code="case.emergency_access_reviewed")
    assert (event.actor_id, event.actor_label, event.role) == (carol.pk, "carol", "auditor")
    assert (event.case_id, event.object_id) == (completed_case.id, str(grant.pk))
    assert event.details["person"] == bob.pk
    assert NOTE not in str(event.details)

    waiting = client.get("/audit/emergency-access/").content.decode()
    assert entries(waiting) == []
    assert "No emergency access is waiting for review." in waiting
    reviewed = client.get("/audit/emergency-access/?state=reviewed").content.decode()
    (entry,) = entries(reviewed)
    assert NOTE in entry and "by carol" in entry and "Mark reviewed" not in entry
    assert len(entries(client.get("/audit/emergency-access/?state=all").content.decode())) == 1


def test_an_access_is_reviewed_once_and_never_by_its_own_user(
    completed_case: Case, bob: User, carol: User
) -> None:
    grant = emergency_access(completed_case, bob)
    # A clinician who is also an auditor does not review their own break-glass.
    roles.grant_role(bob, roles.AUDITOR)
    response = signed_in(bob).post(f"/audit/emergency-access/{grant.pk}/review/", {"note": NOTE})
    assert response.status_code == 409
    assert "reviewed by someone other than its user" in response.content.decode()
    assert (
        signed_in(carol)
        .post(f"/audit/emergency-access/{grant.pk}/review/", {"note": NOTE})
        .status_code
        == 302
    )
    again = signed_in(user_with_role("dora", roles.AUDITOR)).post(
        f"/audit/emergency-access/{grant.pk}/review/", {"note": "A second opinion on it."}
    )
    assert again.status_code == 409
    assert "already reviewed" in again.content.decode()
    assert AuditEvent.objects.filter(code="case.emergency_access_reviewed").count() == 1


def test_only_auditors_and_admins_see_or_review_the_list(
    completed_case: Case, alice: User, bob: User
) -> None:
    grant = emergency_access(completed_case, bob)
    for user in (alice, bob):
        client = signed_in(user)
        assert client.get("/audit/emergency-access/").status_code == 403
        assert (
            client.post(f"/audit/emergency-access/{grant.pk}/review/", {"note": NOTE}).status_code
            == 403
        )
    admin = signed_in(user_with_role("dora", roles.ADMIN))
    assert admin.get("/audit/emergency-access/").status_code == 200
    assert admin.post("/audit/emergency-access/999999/review/", {"note": NOTE}).status_code == 404


def test_an_unknown_filter_value_is_a_400_naming_it(carol: User) -> None:
    response = signed_in(carol).get("/audit/emergency-access/?state=everything")
    assert response.status_code == 400
    assert "<strong>state</strong>" in response.content.decode()


def test_the_empty_list_says_so(carol: User) -> None:
    client = signed_in(carol)
    assert (
        "No emergency access is waiting for review."
        in client.get("/audit/emergency-access/").content.decode()
    )
    assert (
        "No one has used emergency access yet."
        in client.get("/audit/emergency-access/?state=all").content.decode()
    )


def test_the_list_is_paginated_oldest_waiting_first(alice: User, bob: User, carol: User) -> None:
    case = submitted_case(alice)
    grants = [emergency_access(case, bob, minutes_ago=30 - i) for i in range(27)]
    client = signed_in(carol)
    first = client.get("/audit/emergency-access/").content.decode()
    assert len(entries(first)) == 25
    assert f'id="emergency-{grants[0].pk}"' in entries(first)[0]
    assert "Page 1 of 2 (27 in all)" in first
    second = client.get("/audit/emergency-access/?page=2").content.decode()
    second_entries = entries(second)
    assert len(second_entries) == 2
    assert f'id="emergency-{grants[25].pk}"' in second_entries[0]
    assert f'id="emergency-{grants[26].pk}"' in second_entries[1]

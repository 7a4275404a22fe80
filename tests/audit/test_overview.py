"""The overview never shows a rate without its count: counts beside every rate and above
every bar, whole axis labels, weeks with their year, and the answered cases nobody
reviewed."""

from __future__ import annotations

import datetime as dt
import re

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from audit.models import CaseFacts
from clinical.models import Case
from tests import factories
from tests.fakes import FakeModelServer

LONG_REVISION = "sha256:3f9a0c1d2e4b5a6978877665544332211aabbccddeeff00112233445566778899"


def test_overview_counts_beside_every_rate_and_labels_whole(
    carol: User, completed_case: Case, alice: User, fake_model: FakeModelServer
) -> None:
    factories.reviewed_case(
        completed_case, alice, decision="reject", reason_code="cds-not-applicable", reason_text="no"
    )
    factories.completed_case(alice, fake_model)  # answered, never reviewed
    CaseFacts.objects.filter(case_id=completed_case.id).update(model_revision=LONG_REVISION)
    auditor = Client()
    auditor.force_login(carol)
    body = auditor.get("/audit/").content.decode()
    summary = re.sub(r"\s+", " ", body[body.index('id="override-rate"') :][:200])
    assert "100% (1 of 1 reviewed cases)" in summary
    never = re.search(r'id="never-reviewed">(\d+)</strong>', body)
    assert never is not None and never.group(1) == "1"
    # Above each override bar, its count; the revision's label is whole, not cut.
    assert '<text x="' in body and 'class="bar-count">1 of 1</text>' in body
    assert f">{LONG_REVISION}</text>" in body
    # The week's label carries its year; each axis is named.
    today = timezone.now().astimezone(dt.UTC).date()
    monday = today - dt.timedelta(days=today.weekday())
    assert f">{monday.isoformat()}</text>" in body
    for title in ("share of reviewed cases overridden", "week of the review", "answered cases"):
        assert f'class="axis-title">{title}' in body, title
    # Every chart holds all it draws: nothing below the bottom of its view box.
    for svg in re.findall(r"<svg .*?</svg>", body, flags=re.S):
        view_height = float(re.search(r'viewBox="0 0 \d+ (\d+)"', svg).group(1))  # type: ignore[union-attr]
        lowest = max(float(y) for y in re.findall(r' y="([\d.]+)"', svg))
        assert lowest <= view_height, svg[:200]

"""The auditors' event list over REST: `sort` is honoured, unknown filters are refused."""

from __future__ import annotations

from django.contrib.auth.models import User

from tests.conftest import client_for
from tests.factories import submitted_case

URL = "/api/v1/audit/events/"


def test_events_come_in_the_order_sort_asks_for(alice: User, carol: User) -> None:
    for _ in range(3):
        submitted_case(alice)
    client = client_for(carol)
    newest_first = [e["id"] for e in client.get(URL, {"sort": "-id"}).json()["results"]]
    assert len(newest_first) > 3
    assert newest_first == sorted(newest_first, reverse=True)
    oldest_first = [e["id"] for e in client.get(URL).json()["results"]]
    assert oldest_first == sorted(oldest_first)
    by_code = [e["code"] for e in client.get(URL, {"sort": "code"}).json()["results"]]
    assert by_code == sorted(by_code)


def test_an_unknown_sort_or_filter_is_400_naming_it(carol: User) -> None:
    client = client_for(carol)
    bad_sort = client.get(URL, {"sort": "patient"})
    assert bad_sort.status_code == 400
    assert bad_sort.json()["errors"][0]["loc"] == ["query", "sort"]
    unknown = client.get(URL, {"severity": "high"})
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["loc"] == ["query", "severity"]

"""What one accepted intake POST costs the database (issue 20): counted, never timed; and
the routing of its task by the priority it was sent with."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bedside.vault import encryption
from bedside.vault.models import DataKey
from clinical import routing
from clinical.models import Case
from tests.factories import load_case


def _post(client: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/cases/", load_case(), format="json")
    assert response.status_code == 202, response.content
    return [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_an_intake_post_reads_no_data_key_and_takes_no_chain_lock_once_warm(
    ehr_client: Any,
) -> None:
    _post(ehr_client)  # the first POST of the day makes (and commits) today's data key...
    _post(ehr_client)  # ...the next reads it committed, and the process remembers it
    sql = _post(ehr_client)
    assert not [q for q in sql if "clinical_datakey" in q]
    assert not [q for q in sql if "advisory" in q]
    assert not [q for q in sql if "clinical_clinicianreview" in q]  # a new case: no reviews
    # The key with its user's roles and the address's failures this minute (one query), the
    # rate-limit window, BEGIN, case, audit event, COMMIT (issue 20: 9 before).
    assert len(sql) <= 6, sql


@pytest.mark.django_db(transaction=True)
def test_an_intake_post_reads_the_key_its_roles_and_the_address_in_one_query(
    ehr_client: Any,
) -> None:
    _post(ehr_client)
    _post(ehr_client)  # warm: today's data key made, then seen committed
    sql = _post(ehr_client)
    (key_read,) = [q for q in sql if "clinical_apikey" in q and q.startswith("SELECT")]
    assert "auth_user_groups" in key_read and "accounts_sourcefailurewindow" in key_read
    assert not [q for q in sql if q.startswith("SELECT") and q != key_read]


@pytest.mark.django_db(transaction=True)
def test_an_intake_post_routes_its_task_without_reading_the_case_again(
    ehr_client: Any, settings: Any
) -> None:
    assert routing.stat_queue()  # on, as by default: the task is routed by priority
    _post(ehr_client)
    _post(ehr_client)
    sql = _post(ehr_client)
    assert sql[-1] == "COMMIT", sql  # nothing after the commit: the sender knew the priority


def test_a_task_sent_with_its_priority_is_routed_without_a_query(settings: Any) -> None:
    """No database access is allowed in this test: a lookup would raise."""
    settings.BEDSIDE_STAT_QUEUE = "cases.stat"
    settings.BEDSIDE_STAT_PRIORITIES = ["stat", "urgent"]
    route = routing.route_case_task
    for priority, expected in (("stat", {"queue": "cases.stat"}), ("routine", None)):
        options = {"headers": routing.priority_headers(priority)}
        assert route(routing.RUN_CASE, ["a-case-id"], {}, options) == expected


@pytest.mark.django_db
def test_a_task_without_a_known_priority_header_is_routed_by_the_case_row(
    alice: Any, settings: Any
) -> None:
    """The sweeper, a retry of an older message, or a header Bedside does not know."""
    settings.BEDSIDE_STAT_QUEUE = "cases.stat"
    settings.BEDSIDE_STAT_PRIORITIES = ["stat", "urgent"]
    case = Case.objects.create(priority="stat", input={}, submitted_by=alice)
    for options in ({}, {"headers": {routing.PRIORITY_HEADER: "whatever"}}):
        assert routing.route_case_task(routing.RUN_CASE, [str(case.id)], {}, options) == {
            "queue": "cases.stat"
        }


@pytest.mark.django_db(transaction=True)
def test_a_data_key_made_in_a_rolled_back_transaction_is_not_remembered() -> None:
    day = date(2001, 2, 3)
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = encryption.current_data_key(today=day)
        raise RuntimeError("roll back")
    kept = encryption.current_data_key(today=day)
    assert kept.id != lost.id
    assert DataKey.objects.filter(id=kept.id).exists()
    assert encryption.current_data_key(today=day) == kept


@pytest.mark.django_db
def test_a_data_key_seen_only_by_a_transaction_that_wrote_first_is_not_remembered() -> None:
    day = date(2001, 2, 4)
    with pytest.raises(RuntimeError), transaction.atomic():
        made = encryption.current_data_key(today=day)  # made here: may yet roll back
        assert encryption.current_data_key(today=day) == made  # read back, not remembered
        raise RuntimeError("roll back")
    assert encryption.current_data_key(today=day).id != made.id


@pytest.mark.django_db(transaction=True)
def test_the_rate_limit_count_commits_without_waiting_for_the_disk_and_nothing_else_does(
    integration_key: Any,
) -> None:
    from bedside.accounts.throttling import count_request

    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        assert count_request(integration_key.api_key, now)[0] == 1
    assert "set_config('synchronous_commit', 'off', true)" in queries.captured_queries[0]["sql"]
    assert count_request(integration_key.api_key, now)[0] == 2  # the counting still counts
    with connection.cursor() as cursor:  # the setting ended with the counter's own commit
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    with transaction.atomic():  # inside a caller's transaction it would outlive the count
        count_request(integration_key.api_key, now)
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone() == ("on",)

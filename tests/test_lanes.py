"""make test's two lanes (devtools/lanes.py): the e2e lane must not share the other lane's
test database or Redis database, whatever the services are."""

from __future__ import annotations

from devtools.lanes import e2e_environment


def test_the_e2e_lane_gets_its_own_database_and_redis_database() -> None:
    env = e2e_environment(
        {
            "DATABASE_URL": "postgresql://bedside_owner:pw@127.0.0.1:54329/bedside",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6399/0",
            "PATH": "/usr/bin",
        }
    )
    assert env["DATABASE_URL"] == "postgresql://bedside_owner:pw@127.0.0.1:54329/bedside_e2e"
    assert env["CELERY_BROKER_URL"] == "redis://127.0.0.1:6399/1"
    assert env["PATH"] == "/usr/bin"


def test_a_rabbitmq_broker_is_shared_since_each_e2e_test_has_private_queues() -> None:
    broker = "amqp://guest:guest@127.0.0.1:5672//"
    database = "postgresql://postgres@127.0.0.1:5432/bedside"
    env = e2e_environment({"DATABASE_URL": database, "CELERY_BROKER_URL": broker})
    assert env["DATABASE_URL"] == "postgresql://postgres@127.0.0.1:5432/bedside_e2e"
    assert env["CELERY_BROKER_URL"] == broker


def test_unset_settings_mean_the_embedded_services_under_other_names() -> None:
    env = e2e_environment({})
    assert env["DATABASE_URL"].endswith("/bedside_e2e")
    assert env["DATABASE_URL"].startswith("postgresql://bedside_owner")
    assert env["CELERY_BROKER_URL"].endswith("/1")

"""Completion callbacks: a signed POST to the key's on-premises URL when its case finishes,
retried with backoff, every attempt audited; nothing for keys without a callback."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pytest_django.fixtures import DjangoCaptureOnCommitCallbacks

from audit.models import AuditEvent
from bedside import roles
from bedside.accounts import services as accounts_services
from clinical.ehr import callbacks
from clinical.models import Case
from tests.factories import completed_case, issued_key
from tests.fakes import FakeModelServer


class Receiver:
    """The integrator's endpoint: real HTTP on loopback, answering with scripted statuses."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/bedside-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def finished_case(key: accounts_services.IssuedKey, fake_model: FakeModelServer) -> Case:
    return completed_case(key.api_key.user, fake_model, tops=["Acute MI"] * 3)


@pytest.fixture
def hooked_key(db: None, receiver: Receiver, settings: Any) -> accounts_services.IssuedKey:
    # The test receiver listens on loopback, which a callback may reach only by name.
    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    return issued_key("lab-system", roles.INTEGRATION, callback_url=receiver.url)


def test_completed_case_is_announced_signed_and_audited(
    hooked_key: accounts_services.IssuedKey,
    receiver: Receiver,
    fake_model: FakeModelServer,
    settings: Any,
) -> None:
    settings.BEDSIDE_PUBLIC_URL = "http://bedside.example.org/"
    case = finished_case(hooked_key, fake_model)
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert delivery.delivered and delivery.retry_in is None
    headers, body = receiver.received[0]
    payload = json.loads(body)
    assert payload == {
        "event": "case.completed",
        "case": {
            "id": str(case.id),
            "external_id": case.external_id,
            "status": "completed",
            "finished_at": case.finished_at.isoformat(),
            "links": {"self": f"http://bedside.example.org/api/v1/cases/{case.id}/"},
        },
    }
    # The integrator checks the signature with the callback secret it was shown at issue.
    parts = dict(p.split("=", 1) for p in headers["X-Bedside-Signature"].split(","))
    timestamp, signed = parts["t"], parts["v1"]
    assert hooked_key.callback_secret.startswith("bcs_")
    secret = hooked_key.callback_secret.encode()
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signed, expected)
    # What Bedside stores of the key (its SHA-256) no longer makes a valid signature.
    stored = hooked_key.api_key.key_hash.encode()
    forged = hmac.new(stored, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(signed, forged)
    event = AuditEvent.objects.get(code="callback.delivered")
    assert event.details["attempt"] == 1 and event.details["status_code"] == 200


def test_failed_delivery_backs_off_then_gives_up_audited(
    hooked_key: accounts_services.IssuedKey,
    receiver: Receiver,
    fake_model: FakeModelServer,
    settings: Any,
) -> None:
    settings.BEDSIDE_CALLBACK_MAX_ATTEMPTS = 3
    settings.BEDSIDE_CALLBACK_BACKOFF_BASE_S = 10
    case = finished_case(hooked_key, fake_model)
    receiver.statuses = [503, 500, 502]
    waits = [
        callbacks.callback_deliver(case_id=str(case.id), attempt=n).retry_in for n in (1, 2, 3)
    ]
    assert waits == [10, 20, None]
    failures = AuditEvent.objects.filter(code="callback.failed").order_by("id")
    assert [e.details["status_code"] for e in failures] == [503, 500, 502]
    assert failures.last().details["gave_up"] is True  # type: ignore[union-attr]


def test_callback_to_a_public_address_is_refused_at_send_time(
    hooked_key: accounts_services.IssuedKey, fake_model: FakeModelServer
) -> None:
    case = finished_case(hooked_key, fake_model)
    type(hooked_key.api_key).objects.filter(pk=hooked_key.api_key.pk).update(
        callback_url="http://8.8.8.8/hook"
    )
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert not delivery.delivered and delivery.retry_in is None
    assert AuditEvent.objects.get(code="callback.failed").details["error"] == "refused"


def test_finishing_a_case_enqueues_its_callback_after_commit(
    hooked_key: accounts_services.IssuedKey,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clinical.ehr.tasks import send_case_callback_task

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(send_case_callback_task, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        case = finished_case(hooked_key, fake_model)
    assert sent == [(str(case.id), 1)]


def test_keys_without_a_callback_url_send_nothing(
    integration_key: accounts_services.IssuedKey,
    fake_model: FakeModelServer,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clinical.ehr.tasks import send_case_callback_task

    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(send_case_callback_task, "delay", lambda *args: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        case = finished_case(integration_key, fake_model)
    assert sent == []
    assert not callbacks.callback_deliver(case_id=str(case.id), attempt=1).delivered
    assert not AuditEvent.objects.filter(code__startswith="callback.").exists()


def test_the_callback_secret_is_stored_encrypted_never_in_clear(
    hooked_key: accounts_services.IssuedKey,
) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT callback_secret, key_hash FROM clinical_apikey WHERE id = %s",
            [hooked_key.api_key.pk],
        )
        stored, key_hash = cursor.fetchone()
    secret = hooked_key.callback_secret
    assert secret and secret not in stored
    assert hashlib.sha256(secret.encode()).hexdigest() not in stored
    assert key_hash != hashlib.sha256(secret.encode()).hexdigest()
    hooked_key.api_key.refresh_from_db()
    assert hooked_key.api_key.callback_secret == secret


def test_a_retry_carries_the_same_delivery_id(
    hooked_key: accounts_services.IssuedKey, receiver: Receiver, fake_model: FakeModelServer
) -> None:
    case = finished_case(hooked_key, fake_model)
    receiver.statuses = [503, 200]
    assert not callbacks.callback_deliver(case_id=str(case.id), attempt=1).delivered
    assert callbacks.callback_deliver(case_id=str(case.id), attempt=2).delivered
    ids = [headers["X-Bedside-Delivery"] for headers, _ in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1]
    audited = AuditEvent.objects.filter(code__startswith="callback.").order_by("id")
    assert [e.details["delivery"] for e in audited] == ids


def test_rotating_the_secret_prints_a_new_one_that_signs_from_then_on(
    hooked_key: accounts_services.IssuedKey, receiver: Receiver, fake_model: FakeModelServer
) -> None:
    import io

    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_callback_secret", "--name", "lab-system", stdout=out, stderr=err)
    new_secret = out.getvalue().strip()
    assert new_secret.startswith("bcs_") and new_secret != hooked_key.callback_secret
    assert "cannot be shown again" in err.getvalue()
    assert AuditEvent.objects.filter(code="key.callback_secret_rotated").count() == 1
    assert new_secret not in json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))
    case = finished_case(hooked_key, fake_model)
    assert callbacks.callback_deliver(case_id=str(case.id), attempt=1).delivered
    headers, body = receiver.received[0]
    parts = dict(p.split("=", 1) for p in headers["X-Bedside-Signature"].split(","))
    mac = hmac.new(new_secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(parts["v1"], mac.hexdigest())


def test_issuing_a_key_with_a_callback_shows_its_secret_once(
    db: None, receiver: Receiver, settings: Any
) -> None:
    import io

    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    call_command(
        "issue_api_key", "--name", "ris", "--callback-url", receiver.url, stdout=out, stderr=err
    )
    assert out.getvalue().strip().startswith("bsk_")  # stdout: the key alone
    shown = [w for w in err.getvalue().split() if w.startswith("bcs_")]
    assert len(shown) == 1
    from bedside.accounts.models import ApiKey

    assert ApiKey.objects.get(name="ris").callback_secret == shown[0]


def test_a_key_without_a_callback_secret_sends_nothing_unsigned(
    hooked_key: accounts_services.IssuedKey, receiver: Receiver, fake_model: FakeModelServer
) -> None:
    case = finished_case(hooked_key, fake_model)
    type(hooked_key.api_key).objects.filter(pk=hooked_key.api_key.pk).update(callback_secret="")
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert not delivery.delivered and delivery.retry_in is None
    assert receiver.received == []
    assert AuditEvent.objects.get(code="callback.failed").details["error"] == "no callback secret"


def test_the_callback_is_an_openapi_webhook(client: Any, db: None) -> None:
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    document = json.loads(response.content)
    hook = document["webhooks"]["caseFinished"]["post"]
    assert "X-Bedside-Signature" in json.dumps(hook)
    assert "X-Bedside-Delivery" in json.dumps(hook)


# --- Where a callback may go (issue 17, finding 13: blind SSRF) ------------------------------

FORBIDDEN_CALLBACKS = [
    "http://127.0.0.1:5432/",  # the database, on this very server
    "http://localhost:6379/",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",  # cloud instance metadata
    "http://169.254.10.20/hook",  # link-local
    "http://0.0.0.0:8000/hook",
    "http://8.8.8.8/hook",  # public
]


@pytest.mark.parametrize("url", FORBIDDEN_CALLBACKS)
def test_loopback_link_local_metadata_and_public_callbacks_are_refused_at_save(
    db: None, url: str
) -> None:
    import io

    from django.core.management import CommandError, call_command

    from bedside.accounts.admin import ApiKeyForm

    with pytest.raises(CommandError, match="callback URL refused"):
        call_command(
            "issue_api_key", "--name", "probe", "--callback-url", url, stderr=io.StringIO()
        )
    form = ApiKeyForm(data={"scopes": [], "callback_url": url})
    assert not form.is_valid()
    assert "callback URL refused" in str(form.errors)


def test_a_private_network_callback_is_accepted_and_loopback_only_by_name(
    db: None, settings: Any
) -> None:
    accounts_services.api_key_settings_check(scopes=[], callback_url="http://10.20.30.40/hook")
    with pytest.raises(accounts_services.KeyRefused, match="BEDSIDE_CALLBACK_ALLOWED_HOSTS"):
        accounts_services.api_key_settings_check(scopes=[], callback_url="http://127.0.0.1:9/")
    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    accounts_services.api_key_settings_check(scopes=[], callback_url="http://127.0.0.1:9/")
    # Named or not, a metadata address is never a callback's destination.
    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = ["169.254.169.254"]
    with pytest.raises(accounts_services.KeyRefused, match="metadata"):
        accounts_services.api_key_settings_check(
            scopes=[], callback_url="http://169.254.169.254/latest/"
        )


def test_a_callback_turned_to_loopback_after_save_is_refused_at_send_time(
    hooked_key: accounts_services.IssuedKey,
    receiver: Receiver,
    fake_model: FakeModelServer,
    settings: Any,
) -> None:
    case = finished_case(hooked_key, fake_model)
    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = []  # the allow-list entry was removed
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert not delivery.delivered and receiver.received == []
    assert AuditEvent.objects.get(code="callback.failed").details["error"] == "refused"


def test_the_callback_connects_to_the_address_that_was_checked(
    hooked_key: accounts_services.IssuedKey,
    receiver: Receiver,
    fake_model: FakeModelServer,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name is resolved once, checked, and the request goes to that
    address (with the name in Host), never to whatever a second lookup returns."""
    import socket

    from bedside import hosts

    port = int(receiver.url.split(":")[2].split("/")[0])
    settings.BEDSIDE_CALLBACK_ALLOWED_HOSTS = ["ris.hospital.test"]
    type(hooked_key.api_key).objects.filter(pk=hooked_key.api_key.pk).update(
        callback_url=f"http://ris.hospital.test:{port}/bedside-events"
    )
    lookups: list[str] = []
    real_lookup = socket.getaddrinfo

    def resolve(host: str, *args: Any, **kwargs: Any) -> Any:
        """The hospital's DNS: the name resolves to the receiver once, then (rebinding)
        nowhere; addresses resolve to themselves."""
        if host != "ris.hospital.test":
            return real_lookup(host, *args, **kwargs)
        lookups.append(host)
        if len(lookups) > 1:
            raise socket.gaierror("rebound")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(hosts.socket, "getaddrinfo", resolve)
    case = finished_case(hooked_key, fake_model)
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert delivery.delivered, AuditEvent.objects.filter(code="callback.failed").first()
    assert lookups == ["ris.hospital.test"]  # resolved once, by the check
    headers, _ = receiver.received[0]
    assert headers["Host"] == f"ris.hospital.test:{port}"


def test_a_redirect_is_not_followed(
    hooked_key: accounts_services.IssuedKey, receiver: Receiver, fake_model: FakeModelServer
) -> None:
    receiver.statuses = [307]
    case = finished_case(hooked_key, fake_model)
    delivery = callbacks.callback_deliver(case_id=str(case.id), attempt=1)
    assert not delivery.delivered and len(receiver.received) == 1

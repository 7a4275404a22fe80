"""Patient data at rest: raw SQL sees only ciphertext, look-ups go by keyed hash, and a
master-key rotation re-wraps data keys only, after which every record still reads and the
audit chain still verifies."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import date, timedelta
from typing import Any
from typing import Any as SettingsWrapper  # pytest-django does not export its type
from uuid import uuid4

import pytest
from django.contrib.auth.models import User
from django.db import connection

from audit.services import Actor, chain_verify
from bedside.vault import encryption
from bedside.vault import services as vault_services
from bedside.vault.encryption import DecryptionError
from bedside.vault.keyring import MasterKey
from bedside.vault.models import DataKey
from clinical import lifecycle
from clinical.models import Case, ClinicianReview
from reasoning.models import ReasoningRun
from tests.conftest import client_for
from tests.factories import load_case
from tests.fakes import FakeModelServer, assessment, choice, completion

CANARY = "Wyv9Canary"
ADMIN = Actor(label="test rotation", role="admin")


def master(key_id: str) -> MasterKey:
    return MasterKey(key_id, secrets.token_bytes(32))


def canary_case() -> dict[str, Any]:
    case = load_case()
    case["external_id"] = f"MRN-{CANARY}-7"
    case["chief_complaint"] = f"Chest pain after {CANARY} dinner"
    case["past_medical_history"] = [f"{CANARY} syndrome"]
    return case


def case_with_run_and_review(client: Any, fake_model: FakeModelServer) -> Case:
    response = client.post("/api/v1/cases/", canary_case(), format="json")
    assert response.status_code == 202, response.json()
    case = Case.objects.get(id=response.json()["id"])
    # The answer gate refuses a diagnosis that is no clinical term: the canary reaches the
    # stored answer as the text of the case fact it cites (the chief complaint).
    # An invented citation puts it in the samples' gate reasons, the steps in the raw response.
    answer = assessment("Acute myocardial infarction", steps=[f"{CANARY} history weighed."])
    answer["red_flags"][0]["based_on"].append(f"{CANARY} rash")
    fake_model.push(completion([choice(i, json.dumps(answer)) for i in range(3)]))
    lifecycle.case_run(case_id=case.id)
    review = client.post(
        f"/api/v1/cases/{case.id}/reviews/",
        {
            "decision": "modify",
            "reason_code": "need-more-info",
            "reason_text": f"Ask the {CANARY} family first.",
            "differential": [{"diagnosis": f"{CANARY} pericarditis", "likelihood": "high"}],
        },
        format="json",
    )
    assert review.status_code == 201, review.json()
    return Case.objects.get(id=case.id)


def every_table_as_text() -> dict[str, str]:
    """Each table of the database, every row as PostgreSQL prints it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1"
        )
        tables = [row[0] for row in cursor.fetchall()]
        text = {}
        for table in tables:
            query = f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM \"{table}\" t"  # noqa: S608  (names from pg_tables)
            cursor.execute(query)
            text[table] = cursor.fetchone()[0]
    return text


def raw(table: str, column: str, row_id: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        return cursor.fetchone()[0]


# --- what the database holds ----------------------------------------------------------------


def test_raw_sql_sees_only_ciphertext_while_the_application_reads_the_case(
    alice: User, fake_model: FakeModelServer
) -> None:
    case = case_with_run_and_review(client_for(alice), fake_model)
    run = ReasoningRun.objects.get(case=case)
    review = ClinicianReview.objects.get(case=case)

    # Through the application, everything reads back in clear...
    assert CANARY in case.input["chief_complaint"]
    assert case.external_id == f"MRN-{CANARY}-7"
    assert CANARY in run.assessment["differential"][0]["supporting_facts"][0]["text"]
    assert CANARY in str(run.samples) and CANARY in str(run.raw_response)
    assert CANARY in review.reason_text
    assert CANARY in review.modified_assessment["differential"][0]["diagnosis"]
    # ...while no table of the database holds the canary (nor its case-folded form).
    tables = every_table_as_text()
    assert "clinical_case" in tables and "reasoning_reasoningrun" in tables
    leaks = {name for name, text in tables.items() if CANARY.lower() in text.lower()}
    assert leaks == set()
    # The columns really hold ciphertext under today's data key.
    data_key = DataKey.objects.get()
    for table, column, row_id in [
        ("clinical_case", "input", case.id),
        ("clinical_case", "external_id", case.id),
        ("reasoning_reasoningrun", "assessment", run.id),
        ("reasoning_reasoningrun", "reasoning_trace", run.id),
        ("reasoning_reasoningrun", "samples", run.id),
        ("reasoning_reasoningrun", "raw_response", run.id),
        ("clinical_clinicianreview", "reason_text", review.id),
        ("clinical_clinicianreview", "modified_assessment", review.id),
    ]:
        assert raw(table, column, row_id).startswith(f"enc1:{data_key.id.hex}:"), column


def test_the_wrapped_data_key_is_not_the_key(db: None) -> None:
    key = encryption.current_data_key()
    row = DataKey.objects.get(id=key.id)
    assert len(key.secret) == 32
    assert key.secret not in bytes(row.wrapped_key)
    assert row.master_key_id == encryption.settings.BEDSIDE_MASTER_KEYS[0].id


def test_a_value_moved_to_another_column_or_altered_does_not_decrypt(db: None) -> None:
    sealed = encryption.encrypt('{"a": 1}', purpose="clinical_case.input")
    assert encryption.decrypt(sealed, purpose="clinical_case.input") == '{"a": 1}'
    with pytest.raises(DecryptionError, match="integrity"):
        encryption.decrypt(sealed, purpose="reasoning_reasoningrun.assessment")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(DecryptionError):
        encryption.decrypt(flipped, purpose="clinical_case.input")
    with pytest.raises(DecryptionError, match="not an enc1"):
        encryption.decrypt('{"a": 1}', purpose="clinical_case.input")


def test_same_value_twice_gives_two_different_ciphertexts(db: None) -> None:
    first = encryption.encrypt("same", purpose="clinical_case.external_id")
    second = encryption.encrypt("same", purpose="clinical_case.external_id")
    assert first != second


# --- look-ups by external id --------------------------------------------------------------------


def test_cases_are_found_by_exact_external_id_through_the_keyed_hash(
    alice: User, ehr_client: Any
) -> None:
    response = ehr_client.post("/api/v1/cases/", canary_case(), format="json")
    assert response.status_code == 202
    case = Case.objects.get(id=response.json()["id"])
    assert case.external_id_hash == encryption.lookup_hash(f"MRN-{CANARY}-7")
    assert case.external_id_hash not in ("", f"MRN-{CANARY}-7")
    found = ehr_client.get("/api/v1/cases/", {"external_id": f"  mrn-{CANARY.lower()}-7 "})
    assert [c["id"] for c in found.json()["results"]] == [str(case.id)]
    assert found.json()["results"][0]["external_id"] == f"MRN-{CANARY}-7"
    assert ehr_client.get("/api/v1/cases/", {"external_id": "MRN-"}).json()["results"] == []
    assert Case.with_external_id(f"MRN-{CANARY}-7").get() == case


def test_the_lookup_hash_depends_on_the_lookup_key(settings: SettingsWrapper) -> None:
    before = encryption.lookup_hash("ED-1")
    settings.BEDSIDE_LOOKUP_KEY = secrets.token_bytes(32)
    assert encryption.lookup_hash("ED-1") != before
    assert encryption.lookup_hash("") == ""


# --- rotation ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rotation_rewraps_data_keys_only_and_every_record_still_reads(
    alice: User, fake_model: FakeModelServer, settings: SettingsWrapper
) -> None:
    old, new = master("k-old"), master("k-new")
    settings.BEDSIDE_MASTER_KEYS = (old,)
    encryption.forget_unwrapped_keys()
    cases = [case_with_run_and_review(client_for(alice), fake_model) for _ in range(2)]
    # Two periods' data keys: yesterday's made by hand, as a day boundary would.
    yesterday = encryption.current_data_key(today=date.today() - timedelta(days=1))
    sealed_yesterday = encryption.encrypt("kept", purpose="test.value", key=yesterday)
    before = {
        (table, column, row_id): raw(table, column, row_id)
        for case in cases
        for table, column, row_id in [
            ("clinical_case", "input", case.id),
            ("reasoning_reasoningrun", "assessment", case.runs.get().id),
            ("reasoning_reasoningrun", "samples", case.runs.get().id),
            ("clinical_clinicianreview", "reason_text", case.reviews.get().id),
        ]
    }
    readable_before = [
        (c.input, c.external_id, c.runs.get().assessment, c.reviews.get().reason_text)
        for c in Case.objects.filter(id__in=[c.id for c in cases]).order_by("created_at")
    ]
    wrapped_before = dict(DataKey.objects.values_list("id", "wrapped_key"))
    assert {k for k in DataKey.objects.values_list("master_key_id", flat=True)} == {"k-old"}

    # The new key without the old one cannot read yet: the old one really was needed.
    settings.BEDSIDE_MASTER_KEYS = (new,)
    encryption.forget_unwrapped_keys()
    with pytest.raises(DecryptionError, match="k-old"):
        Case.objects.get(id=cases[0].id)

    # The runbook: new key first, old key after it; re-wrap; then the old key goes.
    settings.BEDSIDE_MASTER_KEYS = (new, old)
    report = vault_services.data_keys_rewrap(actor=ADMIN)
    assert (report.rewrapped, report.already_current) == (2, 0)
    assert report.from_master_key_ids == ["k-old"]
    settings.BEDSIDE_MASTER_KEYS = (new,)
    encryption.forget_unwrapped_keys()

    after = {key: raw(*key) for key in before}
    assert after == before  # not one append-only row (nor any case) was rewritten
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {"k-new"}
    assert all(
        bytes(w) != bytes(wrapped_before[i])
        for i, w in DataKey.objects.values_list("id", "wrapped_key")
    )
    readable_after = [
        (c.input, c.external_id, c.runs.get().assessment, c.reviews.get().reason_text)
        for c in Case.objects.filter(id__in=[c.id for c in cases]).order_by("created_at")
    ]
    assert readable_after == readable_before
    assert encryption.decrypt(sealed_yesterday, purpose="test.value") == "kept"
    assert chain_verify().ok
    # Re-wrapping again finds nothing to do; both runs are on the audit record.
    assert vault_services.data_keys_rewrap(actor=ADMIN).rewrapped == 0
    from audit.models import AuditEvent

    events = AuditEvent.objects.filter(code="keys.rewrapped").order_by("id")
    assert [e.details["rewrapped"] for e in events] == [2, 0]
    assert all(e.details["master_key_id"] == "k-new" for e in events)


def test_a_data_key_made_in_a_rolled_back_transaction_leaves_nothing_behind(db: None) -> None:
    from django.db import transaction

    day = date(2001, 2, 3)
    with pytest.raises(RuntimeError), transaction.atomic():
        encryption.current_data_key(today=day)
        raise RuntimeError("roll back")
    assert not DataKey.objects.filter(period=day).exists()


def test_master_keys_parse_strictly() -> None:
    from django.core.exceptions import ImproperlyConfigured

    from bedside.vault.keyring import parse_master_keys

    good = base64.b64encode(secrets.token_bytes(32)).decode()
    keys = parse_master_keys(f"b:{good}, a:{good.rstrip('=')}")
    assert [k.id for k in keys] == ["b", "a"]
    assert good not in repr(keys)
    for bad in ["", "nocolon", f"a:{good},a:{good}", "a:c2hvcnQ=", f"bad id:{good}"]:
        with pytest.raises(ImproperlyConfigured):
            parse_master_keys(bad)


def test_a_cds_hooks_patient_id_is_stored_only_encrypted_or_hashed(ehr_key: Any) -> None:
    from tests.clinical.test_cds_hooks import PATIENT_VIEW, call, patient_view

    request = patient_view()
    patient_id = f"{CANARY}42"
    request["context"]["patientId"] = patient_id
    request["prefetch"]["patientToGreet"]["id"] = patient_id
    response = call(ehr_key, PATIENT_VIEW, request)
    assert response.status_code == 200, response.json()
    case = Case.objects.get()
    assert case.external_id == f"Patient/{patient_id}"
    leaks = {name for name, text in every_table_as_text().items() if CANARY in text}
    assert leaks == set()
    # A second call for the same patient and content finds the same case by the hash.
    again = call(ehr_key, PATIENT_VIEW, request | {"hookInstance": str(uuid4())})
    assert again.status_code == 200
    assert Case.objects.count() == 1

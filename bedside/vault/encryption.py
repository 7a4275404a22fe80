"""Patient data at rest: envelope encryption and the keyed hash for look-ups.

Each UTC day gets one random data key (``DataKey``). Its row holds the key wrapped
(AES-256-GCM) by the current master key from ``BEDSIDE_MASTER_KEYS``; values are encrypted
with the data key. A stored value reads ``enc1:<data key id>:<base64 nonce+ciphertext>``,
and the column it belongs to is bound in as associated data, so a value copied into another
column does not decrypt.

Rotating the master key re-wraps the data keys only (``rewrap_data_keys``): cases, runs and
reviews, which are append-only, are never rewritten. Look-ups by external id use an HMAC of
the normalised id (``lookup_hash``), so an exact id finds its case and the id itself is not
stored in clear.
"""

from __future__ import annotations

import base64
import hmac
import os
import threading
import uuid
from dataclasses import dataclass
from datetime import date
from hashlib import sha256

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from bedside.vault.keyring import MasterKey
from bedside.vault.models import DataKey

PREFIX = "enc1"
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored value cannot be read with the keys configured now."""


# --- Keys ---------------------------------------------------------------------------------


def lookup_hash(external_id: str) -> str:
    """The keyed hash a case is found by; "" for no id. Ids compare trimmed, case-folded."""
    normalised = external_id.strip().casefold()
    if not normalised:
        return ""
    return hmac.new(settings.BEDSIDE_LOOKUP_KEY, normalised.encode(), sha256).hexdigest()


def _master(key_id: str) -> MasterKey:
    for key in settings.BEDSIDE_MASTER_KEYS:
        if key.id == key_id:
            return key
    raise DecryptionError(
        f"master key {key_id!r} is not in BEDSIDE_MASTER_KEYS (was it removed before "
        "`manage.py rewrap_data_keys` ran?)"
    )


def _wrap_aad(data_key_id: uuid.UUID) -> bytes:
    return f"bedside-data-key|{data_key_id}".encode()


def wrap(data_key_id: uuid.UUID, secret: bytes, master: MasterKey) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master.secret).encrypt(nonce, secret, _wrap_aad(data_key_id))


def unwrap(data_key_id: uuid.UUID, wrapped: bytes | memoryview, master_key_id: str) -> bytes:
    master = _master(master_key_id)
    try:
        return AESGCM(master.secret).decrypt(
            bytes(wrapped[:NONCE_BYTES]), bytes(wrapped[NONCE_BYTES:]), _wrap_aad(data_key_id)
        )
    except InvalidTag as exc:
        raise DecryptionError(
            f"data key {data_key_id} does not unwrap with master key {master_key_id!r}"
        ) from exc


# Unwrapped data keys by id. Ids are random UUIDs and a data key's secret never changes (a
# re-wrap changes only how it is stored), so an entry is never stale.
_unwrapped: dict[uuid.UUID, bytes] = {}
_unwrapped_lock = threading.Lock()


def _data_key_secret(data_key_id: uuid.UUID) -> bytes:
    secret = _unwrapped.get(data_key_id)
    if secret is not None:
        return secret
    row = DataKey.objects.filter(id=data_key_id).values_list("wrapped_key", "master_key_id")
    found = row.first()
    if found is None:
        raise DecryptionError(f"data key {data_key_id} does not exist")
    secret = unwrap(data_key_id, found[0], found[1])
    with _unwrapped_lock:
        _unwrapped[data_key_id] = secret
    return secret


def forget_unwrapped_keys() -> None:
    """Drop the unwrapped data keys this process holds (after its master keys changed)."""
    with _unwrapped_lock:
        _unwrapped.clear()
        _current.clear()


# Today's key by day, once this process has seen its row committed (data keys are never
# deleted, and a re-wrap keeps the secret, so it stays right). Saves the intake hot path one
# SELECT per encrypted value. A key made by a transaction that may still roll back is never
# remembered: see ``current_data_key``.
_current: dict[date, DataKeyInUse] = {}


def _remember_current(period: date, key: DataKeyInUse) -> None:
    with _unwrapped_lock:
        _current[period] = key


def forget_current_keys(**_signal: object) -> None:
    """Drop the remembered day keys (the table was emptied: a test database's flush)."""
    with _unwrapped_lock:
        _current.clear()


@dataclass(frozen=True)
class DataKeyInUse:
    id: uuid.UUID
    secret: bytes


def current_data_key(today: date | None = None) -> DataKeyInUse:
    """Today's data key, made (and wrapped by the current master key) on first use.

    Read or made inside the caller's transaction: a key made by a transaction that rolls
    back disappears with the values it encrypted."""
    period = today or timezone.now().date()
    remembered = _current.get(period)
    if remembered is not None:
        return remembered
    # A transaction that has written nothing yet has no transaction id, and sees no row
    # but committed ones: the key it reads then is there for good, and is remembered.
    found = (
        DataKey.objects.filter(period=period)
        .annotate(committed=RawSQL("pg_current_xact_id_if_assigned() IS NULL", []))
        .values_list("id", "committed")
        .first()
    )
    if found is not None:
        key = DataKeyInUse(found[0], _data_key_secret(found[0]))
        if found[1]:
            _remember_current(period, key)
        return key
    master = settings.BEDSIDE_MASTER_KEYS[0]
    new_id = uuid.uuid4()
    secret = AESGCM.generate_key(bit_length=256)
    row, created = DataKey.objects.get_or_create(
        period=period,
        defaults={
            "id": new_id,
            "master_key_id": master.id,
            "wrapped_key": wrap(new_id, secret, master),
        },
    )
    if not created:  # another transaction made today's key first
        return DataKeyInUse(row.id, _data_key_secret(row.id))
    return DataKeyInUse(new_id, secret)


# --- Values -----------------------------------------------------------------------------------


def encrypt(plaintext: str, *, purpose: str, key: DataKeyInUse | None = None) -> str:
    key = key or current_data_key()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key.secret).encrypt(nonce, plaintext.encode(), _value_aad(purpose, key.id))
    body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
    return f"{PREFIX}:{key.id.hex}:{body}"


def decrypt(token: str, *, purpose: str) -> str:
    prefix, _, rest = token.partition(":")
    key_hex, _, body = rest.partition(":")
    if prefix != PREFIX or not body:
        raise DecryptionError(f"{purpose}: the stored value is not an {PREFIX} ciphertext")
    try:
        key_id = uuid.UUID(hex=key_hex)
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:
        raise DecryptionError(f"{purpose}: the stored value is malformed") from exc
    secret = _data_key_secret(key_id)
    try:
        plain = AESGCM(secret).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _value_aad(purpose, key_id)
        )
    except InvalidTag as exc:
        raise DecryptionError(f"{purpose}: the stored value fails its integrity check") from exc
    return plain.decode()


def _value_aad(purpose: str, key_id: uuid.UUID) -> bytes:
    return f"{purpose}|{key_id}".encode()


# --- Rotation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewrapReport:
    master_key_id: str
    rewrapped: int
    already_current: int
    from_master_key_ids: list[str]


def rewrap_data_keys() -> RewrapReport:
    """Re-wrap every data key under the current master key; no other row is touched.

    Afterwards the older master keys can leave ``BEDSIDE_MASTER_KEYS``."""
    master = settings.BEDSIDE_MASTER_KEYS[0]
    rewrapped = 0
    previous: set[str] = set()
    with transaction.atomic():
        keys = DataKey.objects.select_for_update().order_by("period")
        already = keys.filter(master_key_id=master.id).count()
        for row in keys.exclude(master_key_id=master.id):
            previous.add(row.master_key_id)
            secret = unwrap(row.id, row.wrapped_key, row.master_key_id)
            row.wrapped_key = wrap(row.id, secret, master)
            row.master_key_id = master.id
            row.rewrapped_at = timezone.now()
            row.save(update_fields=["wrapped_key", "master_key_id", "rewrapped_at"])
            rewrapped += 1
    return RewrapReport(master.id, rewrapped, already, sorted(previous))

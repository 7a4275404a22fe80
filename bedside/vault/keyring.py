"""The keys that protect patient data at rest, as settings read them from the environment.

``BEDSIDE_MASTER_KEYS`` is a comma-separated list of ``id:key`` entries, each key 32 bytes in
base64. The first entry is the *current* master key: it wraps every new data key. The others
are kept only to unwrap data keys not yet re-wrapped (``manage.py rewrap_data_keys``), and can
be removed once that has run. ``BEDSIDE_LOOKUP_KEY`` is the HMAC key of the keyed hash that
finds cases by external id without storing the id in clear.

A single-machine install that sets neither gets random keys kept beside its other local
state (as Django's secret key is); ``check --deploy`` refuses that in production.

Plain Python with no Django model import: settings load it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class MasterKey:
    id: str
    secret: bytes = b""

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return f"MasterKey({self.id!r})"


def _decode_key(text: str, *, what: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(f"{what} is not base64") from exc
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(f"{what} must be {KEY_BYTES} bytes of base64, not {len(raw)}")
    return raw


def parse_master_keys(raw: str, *, name: str = "BEDSIDE_MASTER_KEYS") -> tuple[MasterKey, ...]:
    keys: list[MasterKey] = []
    for position, entry in enumerate(e for e in raw.split(",") if e.strip()):
        key_id, sep, text = entry.strip().partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ImproperlyConfigured(
                f"{name} entry {position + 1} must be id:base64-key (id: letters, digits, . _ -)"
            )
        if any(k.id == key_id for k in keys):
            raise ImproperlyConfigured(f"{name} names key id {key_id!r} twice")
        keys.append(MasterKey(key_id, _decode_key(text, what=f"{name} key {key_id!r}")))
    if not keys:
        raise ImproperlyConfigured(f"{name} holds no key")
    return tuple(keys)


def parse_lookup_key(raw: str, *, name: str = "BEDSIDE_LOOKUP_KEY") -> bytes:
    return _decode_key(raw, what=name)


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")


def new_master_key_entry(prefix: str = "k") -> str:
    """A fresh ``id:key`` entry; the id names the key without revealing it."""
    text = new_key_text()
    fingerprint = hashlib.sha256(_decode_key(text, what="new key")).hexdigest()[:8]
    return f"{prefix}{fingerprint}:{text}"


def local_secret(path: Path, make: str) -> str:
    """The content of a local key file, created (mode 0600) with ``make`` the first time.

    Created exclusively, so processes starting together agree on one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it
            text = path.read_text().strip()
            if text:
                return text
            time.sleep(0.02)
        raise ImproperlyConfigured(f"{path} is empty") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(make)
    return make

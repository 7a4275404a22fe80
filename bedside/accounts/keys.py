"""Integration keys as text: their form, their scopes and the hash they are stored as.

Pure functions, no Django: the key's shape is shared by authentication and issuing."""

from __future__ import annotations

import hashlib
from datetime import timedelta

KEY_PREFIX = "bsk"
# What an integration key may be limited to; a key with no scopes has all of its role's
# but the explicit ones below.
SCOPE_CASES_SUBMIT = "cases:submit"
SCOPE_CASES_READ = "cases:read"
# Break-glass: open another submitter's case by stating a reason (audited, reviewed).
SCOPE_CASES_EMERGENCY = "cases:emergency"
# No "cds-hooks" scope: an EHR calls CDS Hooks with a signed JWT of its registered issuer,
# never with an API key, so such a scope limited nothing.
SCOPES = (SCOPE_CASES_SUBMIT, SCOPE_CASES_READ, SCOPE_CASES_EMERGENCY)
# Scopes a key holds only when they are named at issue: a key issued with no scopes (all of
# its role's) must not be able to break the glass on other submitters' cases by default.
EXPLICIT_SCOPES = frozenset({SCOPE_CASES_EMERGENCY})
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str | None:
    """Return the lookup prefix of a well-formed key (``bsk_<prefix>_<secret>``), else None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]

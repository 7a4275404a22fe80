"""Model fields whose values are stored encrypted (``bedside.vault.encryption``)."""

from __future__ import annotations

import json
from typing import Any

from django.db import models

from bedside.vault.encryption import decrypt, encrypt


class _EncryptedField(models.TextField):
    """What both encrypted fields share: the purpose their ciphertext is bound to."""

    def purpose(self) -> str:
        return f"{self.model._meta.db_table}.{self.column}"


class EncryptedTextField(_EncryptedField):
    """Text stored encrypted; reads and writes plain ``str`` in Python. ``""`` is stored as
    ``""`` (an empty value says nothing), so "has a reason" filters keep working."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return decrypt(value, purpose=self.purpose())

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None or value == "":
            return value
        return encrypt(str(value), purpose=self.purpose())


class EncryptedJSONField(_EncryptedField):
    """JSON stored encrypted; reads and writes Python values. ``None`` is SQL NULL."""

    # The types django-stubs gives the model attribute: any JSON value, not TextField's str.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value, purpose=self.purpose()))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return encrypt(text, purpose=self.purpose())

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)

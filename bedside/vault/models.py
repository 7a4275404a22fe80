"""The data keys that encrypt patient data at rest, each stored wrapped by a master key."""

from __future__ import annotations

import uuid

from django.db import models


class DataKey(models.Model):
    """One day's data key, wrapped by a master key (see bedside/vault/encryption.py).

    The only rows a master-key rotation rewrites: ``wrapped_key``, ``master_key_id`` and
    ``rewrapped_at`` change, the key itself never does, so what it encrypted stays readable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    period = models.DateField(unique=True)
    master_key_id = models.CharField(max_length=32)
    wrapped_key = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "clinical_datakey"  # made by the clinical app before the vault existed
        ordering = ["period"]

    def __str__(self) -> str:
        return f"Data key for {self.period} (wrapped by {self.master_key_id})"

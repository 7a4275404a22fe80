"""AuditEvent: one row per state change or read of patient data, chained by SHA-256."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Action(models.TextChoices):
    """FHIR AuditEvent.action codes."""

    CREATE = "C", "Create"
    READ = "R", "Read"
    UPDATE = "U", "Update"
    DELETE = "D", "Delete"
    EXECUTE = "E", "Execute"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class AuditEvent(models.Model):
    """Append-only. ``hash`` is SHA-256 over the canonical JSON of the event plus
    ``prev_hash``, so editing or removing any row breaks the chain after it.

    An event is written unlinked (``prev_hash``, ``hash`` and ``chain_position`` NULL) in
    its caller's transaction, and linked once, after it committed, by the chain's
    sequencer (``audit.services.chain_pending``): the chain runs in ``chain_position``
    order, which is commit order, not ``id`` order. Linking is the one change PostgreSQL
    lets through (migration ``0006_chain_sequencer``).

    ``details`` carries codes, ids and numbers only: never free-text patient data.
    """

    id = models.BigAutoField(primary_key=True)
    recorded_at = models.DateTimeField(db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=150)
    role = models.CharField(max_length=20)
    action = models.CharField(max_length=1, choices=Action.choices)
    code = models.CharField(max_length=50, db_index=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    case_id = models.UUIDField(null=True, blank=True, db_index=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64, null=True)  # noqa: DJ001 (NULL: not linked yet)
    hash = models.CharField(max_length=64, unique=True, null=True)  # noqa: DJ001 (as prev_hash)
    chain_position = models.BigIntegerField(null=True, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # The auditors' event filters over a time range: by actor, by event code.
            models.Index(fields=["actor_label", "recorded_at"], name="audit_event_actor_time"),
            models.Index(fields=["code", "recorded_at"], name="audit_event_code_time"),
            # The sequencer's work list: the events not linked yet, in id order.
            models.Index(
                fields=["id"],
                name="audit_event_unlinked",
                condition=models.Q(chain_position__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.recorded_at:%Y-%m-%d %H:%M:%S} {self.code} by {self.actor_label}"


class CaseFacts(models.Model):
    """One row per case with what the auditors' case list filters and sorts by: the case,
    its submitter, its latest run's model and confidence, its latest review's decision.

    A read model, not part of the record: PostgreSQL triggers (migration
    ``0003_case_facts``) keep it in step with cases, runs and reviews, whoever writes them,
    so the list is one narrow table instead of a subquery per case for every page.
    """

    # No database constraint: the facts follow the case (a trigger removes them with it)
    # and must never stand in the way of the clinical app's own writes.
    case = models.OneToOneField(
        "clinical.Case",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(db_index=True)
    # The case's keyed external-id hash, never the id (encrypted on the case itself).
    external_id_hash = models.CharField(max_length=64, blank=True, db_index=True)
    priority = models.CharField(max_length=8)
    status = models.CharField(max_length=10, db_index=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    submitter = models.CharField(max_length=150, db_index=True)
    system = models.CharField(max_length=10)  # person | api
    run_id = models.BigIntegerField(null=True)
    model_name = models.CharField(max_length=200, blank=True)
    model_revision = models.CharField(max_length=200, blank=True, db_index=True)
    confidence = models.FloatField(null=True, db_index=True)
    decision = models.CharField(max_length=10, null=True, db_index=True)  # noqa: DJ001 (NULL: not reviewed)
    reviewed_at = models.DateTimeField(null=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Facts of case {self.case_id}"

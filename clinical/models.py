"""What the cases app owns: cases, their reviews, idempotency records and CDS Hooks cards."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from bedside.vault.encryption import lookup_hash
from bedside.vault.fields import EncryptedJSONField, EncryptedTextField


class CaseStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class CasePriority(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    STAT = "stat", "Stat"


class Case(models.Model):
    """One patient case as submitted, and where it stands in the reasoning pipeline.

    ``input`` holds the validated ``CaseInput`` (always our JSON shape, whatever the case
    arrived as). ``claim_token``/``claimed_until`` let exactly one worker own a running
    case; a worker that dies leaves a lease that expires, and the case is claimed again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Patient data is encrypted at rest (bedside/vault/encryption.py); the external id is found by
    # its keyed hash, kept in step by save().
    external_id = EncryptedTextField(blank=True)
    external_id_hash = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    priority = models.CharField(
        max_length=8, choices=CasePriority.choices, default=CasePriority.ROUTINE
    )
    status = models.CharField(
        max_length=10, choices=CaseStatus.choices, default=CaseStatus.QUEUED, db_index=True
    )
    status_detail = models.CharField(max_length=500, blank=True)
    input = EncryptedJSONField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="case_status_updated")]

    def __str__(self) -> str:
        return f"Case {self.id} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.external_id_hash = lookup_hash(self.external_id or "")
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "external_id" in update_fields:
            kwargs["update_fields"] = {*update_fields, "external_id_hash"}
        super().save(*args, **kwargs)

    # What the pipeline changes as a case moves (claim, retry, finish, re-run).
    PROGRESS_FIELDS = (
        "status",
        "status_detail",
        "started_at",
        "finished_at",
        "attempts",
        "retries",
        "next_retry_at",
        "claim_token",
        "claimed_until",
        "updated_at",
    )

    def save_progress(self) -> None:
        """Save where the case stands, and nothing else: the input and external id are not
        encrypted and written again on every status change."""
        self.save(update_fields=self.PROGRESS_FIELDS)

    @classmethod
    def with_external_id(cls, external_id: str) -> models.QuerySet[Case]:
        """Cases whose external id is exactly this one (trimmed, ignoring case)."""
        return cls.objects.filter(external_id_hash=lookup_hash(external_id))


class IdempotencyRecord(models.Model):
    """One ``Idempotency-Key`` a submitter used, the body it came with, and the case it made.

    The unique constraint is what makes retries safe under concurrency: of two requests
    racing with the same key, PostgreSQL lets one insert win and the other sees the winner.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="idempotency_records"
    )
    key = models.CharField(max_length=255)
    body_sha256 = models.CharField(max_length=64)
    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="idempotency")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key!r} of user {self.user_id}"


class CdsCard(models.Model):
    """A card Bedside gave an EHR in answer to a CDS Hooks call, so that the EHR's feedback
    (which names only the card's uuid) finds its case and ``hookInstance``."""

    uuid = models.CharField(max_length=64, unique=True)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="cds_cards")
    service_id = models.CharField(max_length=64)
    hook_instance = models.CharField(max_length=64)
    kind = models.CharField(max_length=16)  # "assessment" or "status"
    run = models.ForeignKey(
        "reasoning.ReasoningRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The EHR (its JWT issuer) and the EHR's user (context.userId) the card was shown to:
    # feedback names only the card, and is credited to the clinician that user is linked to.
    issuer = models.CharField(max_length=255, blank=True)
    ehr_user_id = models.CharField(max_length=255, blank=True)

    def __str__(self) -> str:
        return f"CDS card {self.uuid} ({self.kind}) for case {self.case_id}"


class CdsFeedback(models.Model):
    """One outcome an EHR reported for one card: a repeat of the same feedback (an EHR's
    retry) finds this row and answers as before, instead of a second review."""

    card = models.ForeignKey(CdsCard, on_delete=models.PROTECT, related_name="feedback")
    outcome = models.CharField(max_length=16)  # "accepted" or "overridden"
    review = models.ForeignKey(
        "ClinicianReview", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["card", "outcome"], name="cds_feedback_once")
        ]

    def __str__(self) -> str:
        return f"CDS feedback {self.outcome} on card {self.card_id}"


class CdsTokenUse(models.Model):
    """A CDS Hooks JWT's ``jti``, kept until the token expires, so a token is used once."""

    issuer = models.CharField(max_length=255)
    jti = models.CharField(max_length=255)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["issuer", "jti"], name="cds_jti_once")]

    def __str__(self) -> str:
        return f"JWT {self.jti} of {self.issuer}"


class ReviewDecision(models.TextChoices):
    ACCEPT = "accept", "Accepted"
    MODIFY = "modify", "Modified"
    REJECT = "reject", "Rejected"


class ReviewSource(models.TextChoices):
    FORM = "form", "Case page"
    API = "api", "REST API"
    CDS_HOOKS = "cds-hooks", "CDS Hooks feedback"


class ClinicianReview(models.Model):
    """A clinician's verdict on the model's answer. Append-only: a later review of the same
    case supersedes an earlier one, nothing is edited.

    ``reason_code`` is a code of HL7's CDS Hooks non-adherence reason code system
    (``clinical/vocabulary``), so reviews from the case page and from an EHR's CDS Hooks
    feedback share one vocabulary. ``modified_assessment`` holds the clinician's own
    differential and plan when the decision is ``modify``.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="reviews")
    run = models.ForeignKey(
        "reasoning.ReasoningRun", on_delete=models.PROTECT, related_name="reviews"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decision = models.CharField(max_length=10, choices=ReviewDecision.choices)
    reason_code = models.CharField(max_length=64, blank=True)
    reason_text = EncryptedTextField(blank=True)
    modified_assessment = EncryptedJSONField(null=True, blank=True)
    source = models.CharField(max_length=10, choices=ReviewSource.choices, default=ReviewSource.API)
    # CDS Hooks feedback joins a review to the card it answers.
    card_uuid = models.CharField(max_length=64, blank=True)
    hook_instance = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Review {self.pk} of case {self.case_id} ({self.decision})"


class CdsWriteback(models.Model):
    """Where a case's answer is written back to the EHR when it finishes: the FHIR server
    and the write-scoped token of the hook call that asked for it, kept (encrypted, like the
    patient's id) only until the token expires or the Communication is sent."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="cds_writeback")
    fhir_server = models.CharField(max_length=2048)
    access_token = EncryptedTextField()
    patient_id = EncryptedTextField()
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"EHR write-back for case {self.case_id}"


class EmergencyAccess(models.Model):
    """Break-glass: a clinician (or an integration holding the ``cases:emergency`` scope)
    opened a case that is not theirs, for a stated reason, until ``expires_at``.

    Never deleted and never edited but once, when an auditor marks it reviewed with their
    own note (PostgreSQL triggers, migration ``0010_emergency_access``). The reason and the
    note are free text that may name the patient: encrypted at rest, kept out of the audit
    events' details, which carry the grant's id.
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="emergency_accesses")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="emergency_accesses"
    )
    reason = EncryptedTextField()
    granted_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField()
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="emergency_access_reviews",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, db_index=True)
    review_note = EncryptedTextField(blank=True)

    class Meta:
        ordering = ["-granted_at", "-id"]
        indexes = [
            models.Index(fields=["case", "person", "expires_at"], name="emergency_access_active")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("granted_at")),
                name="emergency_access_ends_after_it_starts",
            ),
            models.CheckConstraint(
                condition=models.Q(reviewed_at__isnull=True, reviewed_by__isnull=True)
                | models.Q(reviewed_at__isnull=False, reviewed_by__isnull=False),
                name="emergency_access_reviewed_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"Emergency access {self.pk} to case {self.case_id} by user {self.person_id}"

"""ReasoningRun: everything one model call produced for a case, kept whole for audit."""

from __future__ import annotations

from django.db import models

from bedside.vault.fields import EncryptedJSONField, EncryptedTextField


class RunOutcome(models.TextChoices):
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class ReasoningRun(models.Model):
    case = models.ForeignKey("clinical.Case", on_delete=models.PROTECT, related_name="runs")
    created_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=10, choices=RunOutcome.choices)
    failure_reason = models.CharField(max_length=500, blank=True)

    model_name = models.CharField(max_length=200)
    model_revision = models.CharField(max_length=200, blank=True)
    prompt_version = models.CharField(max_length=50)
    prompt_sha256 = models.CharField(max_length=64)
    parameters = models.JSONField(default=dict)

    # The answer, trace, samples and raw response are patient data: encrypted at rest.
    assessment = EncryptedJSONField(null=True, blank=True)
    reasoning_trace = EncryptedTextField(blank=True)
    trace_source = models.CharField(max_length=20, blank=True)
    confidence = models.FloatField(null=True, blank=True)  # calibrated when a calibration applied
    confidence_raw = models.FloatField(null=True, blank=True)
    calibration = models.ForeignKey(
        "reasoning.Calibration",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
    )
    confidence_method = models.CharField(max_length=50, blank=True)
    confidence_components = models.JSONField(default=dict)
    # What the clinician was told about that confidence, frozen when the run finished: a
    # later report or calibration never changes it. Null on runs from before notes were
    # frozen; empty when there was no confidence to note.
    validation_report = models.ForeignKey(
        "reasoning.ValidationReport",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="runs",
    )
    # null, unlike "", means "not recorded": the page must not make one up for old runs.
    validation_note = models.TextField(null=True, blank=True)  # noqa: DJ001 - the API's sentence
    validation_words = models.TextField(null=True, blank=True)  # noqa: DJ001 - the page's words
    calibration_summary = models.JSONField(null=True, blank=True)  # method, report, items

    samples = EncryptedJSONField(default=list)
    finish_reasons = models.JSONField(default=list)
    raw_response = EncryptedJSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run {self.pk} of case {self.case_id} ({self.outcome})"


class ServedModel(models.Model):
    """What a model server said about a model at ``/v1/models``, once per revision.

    The revision is the model id with a hash of the server's root (the weights' path or hub
    name) and context length: a change of weights behind the same name is a new revision,
    and calibrations never carry across revisions.
    """

    revision = models.CharField(max_length=200, unique=True)
    model_id = models.CharField(max_length=200)
    root = models.CharField(max_length=500, blank=True)
    max_model_len = models.PositiveIntegerField(null=True, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.revision


class ValidationReport(models.Model):
    """One ``manage.py evaluate`` run: labelled vignettes through the same model server,
    and how well the model's confidence matched its correctness there."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    model_name = models.CharField(max_length=200)
    model_revision = models.CharField(max_length=200, db_index=True)
    prompt_version = models.CharField(max_length=50)
    prompt_sha256 = models.CharField(max_length=64)
    confidence_method = models.CharField(max_length=50)
    dataset_name = models.CharField(max_length=200)
    dataset_sha256 = models.CharField(max_length=64)
    items_total = models.PositiveIntegerField()
    items_answered = models.PositiveIntegerField()
    samples_per_item = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    bins = models.JSONField(default=list)
    items = models.JSONField(default=list)
    seconds_total = models.FloatField(default=0)
    completion_tokens_total = models.PositiveIntegerField(default=0)
    reliability_png = models.BinaryField(blank=True, default=b"")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Validation {self.pk} of {self.model_revision} on {self.dataset_name}"


class CalibrationMethod(models.TextChoices):
    ISOTONIC = "isotonic.v1", "Isotonic regression"
    PLATT = "platt.v1", "Platt scaling"


class Calibration(models.Model):
    """A map from raw confidence to the accuracy observed at that confidence, fitted on one
    validation report of one model revision and applied only to runs of that revision."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    model_revision = models.CharField(max_length=200, db_index=True)
    method = models.CharField(max_length=20, choices=CalibrationMethod.choices)
    report = models.ForeignKey(
        ValidationReport, on_delete=models.PROTECT, related_name="calibrations"
    )
    parameters = models.JSONField(default=dict)  # isotonic: {"points": [[x, y], ...]}
    sample_size = models.PositiveIntegerField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.method} for {self.model_revision} (report {self.report_id})"

"""ReasoningRun: everything one model call produced for a case, kept whole for audit."""

from __future__ import annotations

from django.db import models


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

    assessment = models.JSONField(null=True, blank=True)
    reasoning_trace = models.TextField(blank=True)
    trace_source = models.CharField(max_length=20, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    confidence_method = models.CharField(max_length=50, blank=True)
    confidence_components = models.JSONField(default=dict)

    samples = models.JSONField(default=list)
    finish_reasons = models.JSONField(default=list)
    raw_response = models.JSONField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Run {self.pk} of case {self.case_id} ({self.outcome})"

"""Bedside's state in Prometheus' text format, computed from the database at each scrape.

Everything is counted over the rows themselves, so every web process and every host gives
the same numbers, and a restart loses nothing. Labels are statuses, priorities, outcomes,
decisions and server addresses: never a case id, an external id or anything a patient said.
Histograms are cumulative over all cases; use ``rate()``/``increase()`` for recent windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from clinical.models import Case, CasePriority, CaseStatus, ClinicianReview, ReviewDecision

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WAIT_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
MODEL_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Exposition:
    """Lines of the text format, each family with its HELP and TYPE once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        self.lines.append(f"{name}{_labels(labels or {})} {_number(value)}")

    def histogram(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        counts: dict[str, Any],
        labels: dict[str, str] | None = None,
        *,
        declare: bool = True,
    ) -> None:
        if declare:
            self.family(name, "histogram", help_text)
        labels = labels or {}
        for i, upper in enumerate(buckets):
            self.sample(f"{name}_bucket", counts[f"le_{i}"], {**labels, "le": _number(upper)})
        self.sample(f"{name}_bucket", counts["count"], {**labels, "le": "+Inf"})
        self.sample(f"{name}_sum", counts["sum"], labels)
        self.sample(f"{name}_count", counts["count"], labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _duration_histogram(
    queryset: QuerySet[Any], later: str, earlier: str, buckets: Sequence[float]
) -> dict[str, Any]:
    """Cumulative bucket counts of ``later - earlier`` in seconds, in one query."""
    annotated = queryset.filter(
        **{f"{later}__isnull": False, f"{earlier}__isnull": False}
    ).annotate(span=ExpressionWrapper(F(later) - F(earlier), output_field=DurationField()))
    aggregates: dict[str, Any] = {
        f"le_{i}": Count("pk", filter=Q(span__lte=timedelta(seconds=upper)))
        for i, upper in enumerate(buckets)
    }
    result = annotated.aggregate(count=Count("pk"), total=Sum("span"), **aggregates)
    total: timedelta | None = result.pop("total")
    return {**result, "sum": round(total.total_seconds(), 3) if total else 0.0}


def _value_histogram(
    queryset: QuerySet[Any], field: str, buckets: Sequence[float], scale: float = 1.0
) -> dict[str, Any]:
    """Cumulative bucket counts of a numeric field (divided by ``scale``), in one query."""
    present = queryset.filter(**{f"{field}__isnull": False})
    aggregates: dict[str, Any] = {
        f"le_{i}": Count("pk", filter=Q(**{f"{field}__lte": upper * scale}))
        for i, upper in enumerate(buckets)
    }
    result = present.aggregate(
        count=Count("pk"),
        total=Coalesce(Sum(field, output_field=FloatField()), 0.0, output_field=FloatField()),
        **aggregates,
    )
    return {**result, "sum": round(float(result.pop("total")) / scale, 3)}


def _server_label(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def render(model_servers: Iterable[tuple[str, str | None]] = ()) -> str:
    """The whole exposition. ``model_servers``: (base URL, problem or None) for each server."""
    from reasoning.models import ReasoningRun, RunOutcome

    out = Exposition()

    out.family("bedside_cases", "gauge", "Cases by status and priority.")
    counts = {
        (row["status"], row["priority"]): row["n"]
        for row in Case.objects.values("status", "priority").annotate(n=Count("pk")).order_by()
    }
    for status in CaseStatus.values:
        for priority in CasePriority.values:
            out.sample(
                "bedside_cases",
                counts.get((status, priority), 0),
                {"status": status, "priority": priority},
            )

    oldest = (
        Case.objects.filter(status=CaseStatus.QUEUED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    out.family("bedside_oldest_queued_case_age_seconds", "gauge", "Age of the oldest queued case.")
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    out.sample("bedside_oldest_queued_case_age_seconds", round(age, 3))

    cases = Case.objects.all()
    out.histogram(
        "bedside_case_queue_wait_seconds",
        "From submission to a worker first taking the case.",
        WAIT_BUCKETS_S,
        _duration_histogram(cases, "started_at", "created_at", WAIT_BUCKETS_S),
    )
    out.family("bedside_case_total_seconds", "histogram", "From submission to a final status.")
    for status in (CaseStatus.COMPLETED, CaseStatus.FAILED):
        out.histogram(
            "bedside_case_total_seconds",
            "",
            WAIT_BUCKETS_S,
            _duration_histogram(
                cases.filter(status=status), "finished_at", "created_at", WAIT_BUCKETS_S
            ),
            {"status": str(status)},
            declare=False,
        )

    runs = ReasoningRun.objects.all()
    out.histogram(
        "bedside_model_seconds",
        "Time the model server took to answer one case (all its samples, one request).",
        MODEL_BUCKETS_S,
        _value_histogram(
            runs.filter(raw_response__isnull=False), "latency_ms", MODEL_BUCKETS_S, 1000.0
        ),
    )
    out.histogram(
        "bedside_confidence",
        "Confidence of completed runs (calibrated where a calibration applied).",
        CONFIDENCE_BUCKETS,
        _value_histogram(
            runs.filter(outcome=RunOutcome.COMPLETED), "confidence", CONFIDENCE_BUCKETS
        ),
    )

    out.family("bedside_runs_total", "counter", "Reasoning runs recorded, by outcome.")
    by_outcome = dict(runs.values_list("outcome").annotate(n=Count("pk")).order_by())
    for outcome in RunOutcome.values:
        out.sample("bedside_runs_total", by_outcome.get(outcome, 0), {"outcome": outcome})

    from audit.models import AuditEvent

    out.family(
        "bedside_model_errors_total",
        "counter",
        "Model errors: the server unreachable or overloaded (the case waits and is retried), "
        "or a run with no usable answer.",
    )
    out.sample(
        "bedside_model_errors_total",
        AuditEvent.objects.filter(code="run.retry_scheduled").count(),
        {"kind": "unavailable"},
    )
    out.sample(
        "bedside_model_errors_total",
        by_outcome.get(RunOutcome.FAILED, 0),
        {"kind": "failed_run"},
    )

    out.family("bedside_reviews_total", "counter", "Clinician reviews, by decision.")
    decisions = dict(
        ClinicianReview.objects.values_list("decision").annotate(n=Count("pk")).order_by()
    )
    for decision in ReviewDecision.values:
        out.sample("bedside_reviews_total", decisions.get(decision, 0), {"decision": decision})

    latest_decision = Subquery(
        ClinicianReview.objects.filter(case=OuterRef("pk"))
        .order_by("-created_at", "-pk")
        .values("decision")[:1]
    )
    reviewed = (
        Case.objects.annotate(latest=latest_decision)
        .filter(latest__isnull=False)
        .aggregate(
            cases=Count("pk"), overridden=Count("pk", filter=~Q(latest=ReviewDecision.ACCEPT))
        )
    )
    out.family(
        "bedside_override_ratio",
        "gauge",
        "Share of reviewed cases whose latest review modified or rejected the answer.",
    )
    out.sample(
        "bedside_override_ratio",
        round(reviewed["overridden"] / reviewed["cases"], 6) if reviewed["cases"] else 0.0,
    )
    out.family("bedside_reviewed_cases", "gauge", "Cases with at least one review.")
    out.sample("bedside_reviewed_cases", reviewed["cases"])

    servers = list(model_servers)
    if servers:
        out.family("bedside_model_server_up", "gauge", "1 when the model server answers /models.")
        for url, problem in servers:
            out.sample(
                "bedside_model_server_up", 0 if problem else 1, {"server": _server_label(url)}
            )
    return out.text()

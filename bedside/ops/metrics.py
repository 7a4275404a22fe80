"""Bedside's state in Prometheus' text format, computed from the database at each scrape
by a prometheus_client collector on a private registry.

Everything is counted over the rows themselves, so every web process and every host gives
the same numbers, and a restart loses nothing. Labels are statuses, priorities, outcomes,
decisions and server addresses: never a case id, an external id or anything a patient said.
Histograms are cumulative over all cases; use ``rate()``/``increase()`` for recent windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from clinical.models import Case, CasePriority, CaseStatus, ClinicianReview, ReviewDecision

# generate_latest writes text format 0.0.4 (CONTENT_TYPE_LATEST names a newer one).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WAIT_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
MODEL_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _bucket_bound(upper: float) -> str:
    return repr(float(upper)) if isinstance(upper, float) else str(upper)


def _buckets(buckets: Sequence[float], counts: dict[str, Any]) -> list[tuple[str, float]]:
    """prometheus_client's (le, cumulative count) pairs, ending at +Inf with the count."""
    pairs = [(_bucket_bound(upper), counts[f"le_{i}"]) for i, upper in enumerate(buckets)]
    return [*pairs, ("+Inf", counts["count"])]


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


class BedsideCollector(Collector):
    """Every family computed from the database when collected: nothing is kept in memory
    between scrapes, so each process and host answers the same."""

    def __init__(self, model_servers: Iterable[tuple[str, str | None]] = ()) -> None:
        self.model_servers = list(model_servers)

    def collect(self) -> Iterator[Metric]:
        from audit.models import AuditEvent
        from reasoning.models import ReasoningRun, RunOutcome

        cases_gauge = GaugeMetricFamily(
            "bedside_cases", "Cases by status and priority.", labels=["status", "priority"]
        )
        counts = {
            (row["status"], row["priority"]): row["n"]
            for row in Case.objects.values("status", "priority").annotate(n=Count("pk")).order_by()
        }
        for status in CaseStatus.values:
            for priority in CasePriority.values:
                cases_gauge.add_metric([status, priority], counts.get((status, priority), 0))
        yield cases_gauge

        oldest = (
            Case.objects.filter(status=CaseStatus.QUEUED)
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "bedside_oldest_queued_case_age_seconds",
            "Age of the oldest queued case.",
            value=round(age, 3),
        )

        cases = Case.objects.all()
        wait = _duration_histogram(cases, "started_at", "created_at", WAIT_BUCKETS_S)
        yield HistogramMetricFamily(
            "bedside_case_queue_wait_seconds",
            "From submission to a worker first taking the case.",
            buckets=_buckets(WAIT_BUCKETS_S, wait),
            sum_value=wait["sum"],
        )
        total = HistogramMetricFamily(
            "bedside_case_total_seconds", "From submission to a final status.", labels=["status"]
        )
        for status in (CaseStatus.COMPLETED, CaseStatus.FAILED):
            counts_total = _duration_histogram(
                cases.filter(status=status), "finished_at", "created_at", WAIT_BUCKETS_S
            )
            total.add_metric(
                [str(status)], _buckets(WAIT_BUCKETS_S, counts_total), counts_total["sum"]
            )
        yield total

        runs = ReasoningRun.objects.all()
        model = _value_histogram(
            runs.filter(raw_response__isnull=False), "latency_ms", MODEL_BUCKETS_S, 1000.0
        )
        yield HistogramMetricFamily(
            "bedside_model_seconds",
            "Time the model server took to answer one case (all its samples, one request).",
            buckets=_buckets(MODEL_BUCKETS_S, model),
            sum_value=model["sum"],
        )
        confidence = _value_histogram(
            runs.filter(outcome=RunOutcome.COMPLETED), "confidence", CONFIDENCE_BUCKETS
        )
        yield HistogramMetricFamily(
            "bedside_confidence",
            "Confidence of completed runs (calibrated where a calibration applied).",
            buckets=_buckets(CONFIDENCE_BUCKETS, confidence),
            sum_value=confidence["sum"],
        )

        runs_total = CounterMetricFamily(
            "bedside_runs_total", "Reasoning runs recorded, by outcome.", labels=["outcome"]
        )
        by_outcome = dict(runs.values_list("outcome").annotate(n=Count("pk")).order_by())
        for outcome in RunOutcome.values:
            runs_total.add_metric([outcome], by_outcome.get(outcome, 0))
        yield runs_total

        errors = CounterMetricFamily(
            "bedside_model_errors_total",
            "Model errors: the server unreachable or overloaded (the case waits and is "
            "retried), or a run with no usable answer.",
            labels=["kind"],
        )
        errors.add_metric(
            ["unavailable"], AuditEvent.objects.filter(code="run.retry_scheduled").count()
        )
        errors.add_metric(["failed_run"], by_outcome.get(RunOutcome.FAILED, 0))
        yield errors

        reviews = CounterMetricFamily(
            "bedside_reviews_total", "Clinician reviews, by decision.", labels=["decision"]
        )
        decisions = dict(
            ClinicianReview.objects.values_list("decision").annotate(n=Count("pk")).order_by()
        )
        for decision in ReviewDecision.values:
            reviews.add_metric([decision], decisions.get(decision, 0))
        yield reviews

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
        yield GaugeMetricFamily(
            "bedside_override_ratio",
            "Share of reviewed cases whose latest review modified or rejected the answer.",
            value=round(reviewed["overridden"] / reviewed["cases"], 6)
            if reviewed["cases"]
            else 0.0,
        )
        yield GaugeMetricFamily(
            "bedside_reviewed_cases", "Cases with at least one review.", value=reviewed["cases"]
        )

        if self.model_servers:
            up = GaugeMetricFamily(
                "bedside_model_server_up",
                "1 when the model server answers /models.",
                labels=["server"],
            )
            for url, problem in self.model_servers:
                up.add_metric([_server_label(url)], 0 if problem else 1)
            yield up


def render(model_servers: Iterable[tuple[str, str | None]] = ()) -> str:
    """The whole exposition. ``model_servers``: (base URL, problem or None) for each server.

    A private registry per scrape: the default one would add this process's own metrics,
    which differ from host to host."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BedsideCollector(model_servers))
    return generate_latest(registry).decode()

"""Validate the served model on labelled multiple-choice vignettes and write a report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit.services import Actor
from reasoning import evaluation, services
from reasoning.client import ModelUnavailable

SHIPPED_SAMPLE = Path(evaluation.__file__).resolve().parent / "datasets" / "medqa-us-4opt-12.jsonl"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class Command(BaseCommand):
    help = (
        "Run labelled vignettes (jsonl: question, options {A..}, answer_idx) through the model "
        "server and report accuracy, Brier score, ECE, AUROC and a reliability diagram."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dataset",
            default=str(SHIPPED_SAMPLE),
            help="jsonl file of vignettes (default: the 12-item public MedQA sample shipped)",
        )
        parser.add_argument("--limit", type=int, default=None, help="only the first N items")
        parser.add_argument("--out", default=None, help="folder for report.json/.md and PNG")
        parser.add_argument("--concurrency", type=int, default=settings.BEDSIDE_EVAL_CONCURRENCY)

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["dataset"])
        if not path.is_file():
            raise CommandError(f"no such data set: {path}")
        try:
            dataset = evaluation.load_dataset(path, limit=options["limit"])
        except (evaluation.DatasetError, UnicodeDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        out = Path(options["out"]) if options["out"] else settings.STATE_DIR / "reports" / stamp

        def progress(done: int, total: int, elapsed: float) -> None:
            remaining = elapsed / done * (total - done)
            self.stderr.write(
                f"evaluate: {done}/{total} items ({done / total:.0%}), "
                f"{_duration(elapsed)} elapsed, about {_duration(remaining)} left"
            )
            self.stderr.flush()

        self.stderr.write(
            f"evaluate: {len(dataset.items)} items of {dataset.name} against "
            f"{settings.BEDSIDE_MODEL_NAME} at {settings.BEDSIDE_MODEL_BASE_URL}, "
            f"{settings.BEDSIDE_SAMPLES} samples each, {options['concurrency']} at a time"
        )
        try:
            report = services.evaluation_run(
                dataset=dataset,
                out_dir=out,
                concurrency=options["concurrency"],
                actor=Actor(label="command:evaluate", role="admin"),
                progress=progress,
            )
        except (services.EvaluationRefused, ModelUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        m = report.metrics
        auroc = "undefined" if m["auroc"] is None else f"{m['auroc']:.3f}"
        self.stdout.write(
            f"report {report.pk}: model {report.model_revision}, prompt {report.prompt_version}, "
            f"data set sha256 {report.dataset_sha256[:12]}…\n"
            f"  items {report.items_total} (answered {report.items_answered}), "
            f"accuracy {m['accuracy']:.3f}, Brier {m['brier']:.3f}, ECE {m['ece']:.3f}, "
            f"AUROC {auroc}\n"
            f"  usable samples {_share(m.get('usable_sample_share'))}, cited facts verified "
            f"{_share(m.get('verified_fact_share'))}, diagnoses coded "
            f"{_share(m.get('coded_diagnosis_share'))}\n"
            f"  {m['seconds_per_item']} s and {m['completion_tokens_per_item']} completion "
            f"tokens per item; files in {out}"
        )


def _share(value: float | None) -> str:
    return "n/a (multiple choice)" if value is None else f"{value:.1%}"

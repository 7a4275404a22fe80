"""Fit a confidence calibration from a validation report, for that report's model revision."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import Actor
from reasoning import calibration, selectors, services
from reasoning.models import ValidationReport


class Command(BaseCommand):
    help = (
        "Fit an isotonic (or Platt) map from raw confidence to observed accuracy on a validation "
        "report. New runs of the same model revision store both raw and calibrated confidence."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--report",
            type=int,
            default=None,
            help="report id (default: the newest report for the model the server serves now)",
        )
        methods = [calibration.ISOTONIC, calibration.PLATT]
        parser.add_argument("--method", choices=methods, default=calibration.ISOTONIC)

    def handle(self, *args: Any, **options: Any) -> None:
        served = services.model_revision()
        if options["report"] is not None:
            report = ValidationReport.objects.filter(pk=options["report"]).first()
            if report is None:
                raise CommandError(f"no validation report {options['report']}")
        else:
            if not served:
                raise CommandError(
                    "the model server cannot be asked which model it serves; name a --report"
                )
            report = selectors.latest_report(served)
            if report is None:
                raise CommandError(
                    f"no validation report for {served}: run `manage.py evaluate` first"
                )
        if served and report.model_revision != served:
            raise CommandError(
                f"report {report.pk} measured {report.model_revision}, but the server now serves "
                f"{served}; a calibration never carries across model revisions. Run evaluate again."
            )
        try:
            fitted = services.calibration_fit(
                report=report,
                method=options["method"],
                actor=Actor(label="command:calibrate", role="admin"),
            )
        except services.EvaluationRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"calibration {fitted.pk}: {fitted.method} for {fitted.model_revision}, fitted on "
            f"report {report.pk} ({fitted.sample_size} items): {fitted.parameters}"
        )

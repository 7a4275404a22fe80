"""Walk the audit chain; exit 0 when it is intact, 1 naming the first broken event (and
listing every later one)."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import CheckpointInvalid, chain_verify, checkpoint_latest, checkpoint_load


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain (and, with --checkpoint, that its tail was not cut off). "
        "Exit status 0: intact; 1: broken, with the first broken event named."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint", type=Path, help="a file written earlier by manage.py audit_checkpoint"
        )
        parser.add_argument(
            "--latest-checkpoint",
            action="store_true",
            help="the newest checkpoint Celery beat wrote to BEDSIDE_AUDIT_CHECKPOINT_DIR",
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(
        self,
        *args: Any,
        checkpoint: Path | None,
        latest_checkpoint: bool,
        json: bool,
        **options: Any,
    ) -> None:
        saved = None
        if latest_checkpoint:
            checkpoint = checkpoint_latest(settings.BEDSIDE_AUDIT_CHECKPOINT_DIR)
            if checkpoint is None:
                raise CommandError(
                    f"no checkpoint in {settings.BEDSIDE_AUDIT_CHECKPOINT_DIR} yet (Celery beat "
                    "writes one every BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S)"
                )
        if checkpoint is not None:
            try:
                saved = checkpoint_load(
                    _read_json(checkpoint), key=settings.BEDSIDE_AUDIT_CHECKPOINT_KEY
                )
            except CheckpointInvalid as exc:
                raise CommandError(f"{checkpoint}: {exc}") from exc
        report = chain_verify(checkpoint=saved)
        if json:
            self.stdout.write(_dumps(report.as_dict()))
        elif report.ok:
            against = f", up to checkpoint #{saved.head_id}" if saved else ""
            self.stdout.write(
                f"audit chain intact: {report.events_checked} events, head #{report.head_id}"
                f"{against} ({report.seconds:.1f} s)"
            )
        else:
            self.stderr.write(
                f"audit chain BROKEN at event #{report.broken_id} ({report.problem}): "
                f"{report.reason}"
            )
            # The walk goes on past the first break: name every other one after it.
            for later in report.breaks[1:]:
                self.stderr.write(f"  also broken: event #{later.event_id} ({later.problem})")
            if report.breaks_total > len(report.breaks):
                self.stderr.write(
                    f"  ... {report.breaks_total} broken events in all ({len(report.breaks)} named)"
                )
        if not report.ok:
            raise SystemExit(1)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{path}: not a checkpoint object")
    return data


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)

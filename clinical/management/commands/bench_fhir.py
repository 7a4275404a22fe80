"""Time the FHIR mapping on a record inflated to a given size (default 5 MB).

The record is a Synthea bundle whose non-Patient entries are copied with fresh ids until
the JSON reaches the size: many encounters, one patient, as a long hospital record looks.
"""

import json
import re
import statistics
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bedside.paths import PROJECT_ROOT
from clinical.ehr.fhir import case_input_from_bundle

DEFAULT_SOURCE = PROJECT_ROOT / "tests" / "data" / "public" / "synthea-r4"
UUID_TAIL = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{10})[0-9a-f]{2}")


def inflated(bundle: dict[str, Any], size: int) -> dict[str, Any]:
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    others = json.dumps([e for e in bundle["entry"] if e is not patient])
    patient_id = patient["resource"]["id"]
    big = {"resourceType": "Bundle", "type": "transaction", "entry": [patient]}
    copy = 0
    while len(json.dumps(big)) < size:
        # Every id but the patient's gets a per-copy ending, so references stay consistent.
        def tail(m: re.Match[str], c: int = copy) -> str:
            return m.group(0) if m.group(0) == patient_id else f"{m.group(1)}{c:02x}"

        text = UUID_TAIL.sub(tail, others)
        big["entry"] += json.loads(text)
        copy += 1
    return big


class Command(BaseCommand):
    help = "Time the FHIR Bundle → CaseInput mapping on an inflated Synthea record."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bundle", type=Path, help="a Synthea bundle (default: the largest)")
        parser.add_argument("--megabytes", type=float, default=5.0)
        parser.add_argument("--runs", type=int, default=7)

    def handle(
        self, *args: Any, bundle: Path | None, megabytes: float, runs: int, **o: Any
    ) -> None:
        if bundle is None:
            candidates = sorted(DEFAULT_SOURCE.glob("*.json"), key=lambda p: p.stat().st_size)
            if not candidates:
                raise CommandError(f"no bundles under {DEFAULT_SOURCE}; pass --bundle")
            bundle = candidates[-1]
        raw = json.dumps(inflated(json.loads(bundle.read_text()), int(megabytes * 1_000_000)))
        cpu, wall = [], []
        for _ in range(runs):
            started, started_cpu = time.perf_counter(), time.process_time()
            intake = case_input_from_bundle(json.loads(raw))
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        self.stdout.write(
            f"{bundle.name}: {len(raw) / 1e6:.1f} MB, {len(json.loads(raw)['entry'])} entries; "
            f"parse + map over {runs} runs: median {statistics.median(wall):.3f} s wall, "
            f"{statistics.median(cpu):.3f} s CPU (first run {wall[0]:.3f} s); "
            f"mapped {intake.mapped}, skipped {intake.skipped}"
        )

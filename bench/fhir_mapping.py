"""What the FHIR mapper makes of each Synthea record, against what the raw JSON says.

Run: PYTHONPATH=. .venv/bin/python bench/fhir_mapping.py [FOLDER] [--json OUT]
(FOLDER defaults to tests/data/public/synthea-r4; docs/api.md has the results).

Per bundle, the case built from its latest encounter: how many conditions, medications,
allergies and labs it holds, its chief complaint, and the conditions active at the visit
(worked out here from onset and abatement dates alone) that the case misses or holds
without cause. No database, no server: the mapper is a pure function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = ROOT / "tests" / "data" / "public" / "synthea-r4"


def _resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == kind
    ]


def expected_conditions(bundle: dict[str, Any]) -> set[str]:
    """Conditions active at the latest encounter, by dates only (ISO strings compare)."""
    encounters = _resources(bundle, "Encounter")
    latest = max(encounters, key=lambda e: e["period"]["start"])
    start, end = latest["period"]["start"], latest["period"].get("end", latest["period"]["start"])
    names = set()
    for condition in _resources(bundle, "Condition"):
        onset = condition.get("onsetDateTime") or condition.get("recordedDate") or ""
        abated = condition.get("abatementDateTime")
        verification = condition.get("verificationStatus", {}).get("coding", [{}])[0].get("code")
        if verification in ("refuted", "entered-in-error"):
            continue
        if onset <= end and (abated is None or abated > start):
            names.add(condition["code"]["text"])
    return names


def measure(path: Path) -> dict[str, Any]:
    from clinical.ehr.fhir import FhirIntakeError, case_input_from_bundle

    bundle = json.loads(path.read_text())
    try:
        case = case_input_from_bundle(bundle).case_input
    except FhirIntakeError as exc:
        return {"bundle": path.stem.split("_")[0], "error": exc.errors[:3]}
    expected = expected_conditions(bundle)
    mapped = set(case.past_medical_history)
    return {
        "bundle": path.stem.split("_")[0],
        "conditions": len(case.past_medical_history),
        "medications": len(case.medications),
        "allergies": len(case.allergies),
        "labs": len(case.labs),
        "chief_complaint": case.chief_complaint,
        "missed_conditions": sorted(expected - mapped),
        "unexpected_conditions": sorted(mapped - expected),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = [measure(p) for p in sorted(args.folder.glob("*.json"))]
    print(f"{'bundle':10} cond meds allg labs  missed extra  chief complaint")
    for row in rows:
        if "error" in row:
            print(f"{row['bundle']:10} error: {row['error']}")
            continue
        print(
            f"{row['bundle']:10} {row['conditions']:4} {row['medications']:4} "
            f"{row['allergies']:4} {row['labs']:4}  {len(row['missed_conditions']):6} "
            f"{len(row['unexpected_conditions']):5}  {row['chief_complaint'][:60]}"
        )
    ok = [r for r in rows if "error" not in r]
    totals = {k: sum(r[k] for r in ok) for k in ("conditions", "medications", "allergies", "labs")}
    missing = sum(1 for r in ok if r["missed_conditions"])
    checkup = sum(1 for r in ok if r["chief_complaint"].startswith("Encounter for check up"))
    print(f"\n{len(rows)} bundles, {len(ok)} mapped; totals {totals}")
    print(f"bundles missing a condition active at the visit: {missing}")
    print(f"bundles whose chief complaint is the check-up encounter type: {checkup}")
    for row in ok:
        if row["missed_conditions"] or row["unexpected_conditions"]:
            print(f"  {row['bundle']}: missed {row['missed_conditions']}, ", end="")
            print(f"extra {row['unexpected_conditions']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    import django

    sys.path.insert(0, str(ROOT))
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")
    django.setup()
    raise SystemExit(main())

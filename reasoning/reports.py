"""Validation reports as files: JSON, Markdown and the reliability diagram (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasoning import evaluation
from reasoning.models import ValidationReport


def report_document(report: ValidationReport) -> dict[str, Any]:
    return {
        "id": report.pk,
        "created_at": report.created_at.isoformat(),
        "model": {"name": report.model_name, "revision": report.model_revision},
        "prompt": {"version": report.prompt_version, "sha256": report.prompt_sha256},
        "confidence_method": report.confidence_method,
        "dataset": {"name": report.dataset_name, "sha256": report.dataset_sha256},
        "items_total": report.items_total,
        "items_answered": report.items_answered,
        "samples_per_item": report.samples_per_item,
        "parameters": report.parameters,
        "metrics": report.metrics,
        "reliability_bins": report.bins,
        "seconds_total": report.seconds_total,
        "completion_tokens_total": report.completion_tokens_total,
        "items": report.items,
    }


def _share(value: float | None) -> str:
    return "not applicable" if value is None else f"{value:.1%}"


def report_write_files(report: ValidationReport, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    document = report_document(report)
    m = report.metrics
    auroc = "undefined (all right or all wrong)" if m["auroc"] is None else f"{m['auroc']:.3f}"
    lines = [
        f"# Validation report {report.pk}",
        "",
        f"- Model: {report.model_name} (revision {report.model_revision})",
        f"- Prompt: {report.prompt_version} (sha256 {report.prompt_sha256})",
        f"- Confidence: {report.confidence_method}, {report.samples_per_item} samples per item",
        f"- Data set: {report.dataset_name} (sha256 {report.dataset_sha256})",
        f"- Items: {report.items_total}, answered {report.items_answered}",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| accuracy | {m['accuracy']:.3f} |",
        f"| Brier score | {m['brier']:.3f} |",
        f"| expected calibration error ({evaluation.BINS} bins) | {m['ece']:.3f} |",
        f"| AUROC of confidence for correctness | {auroc} |",
        f"| mean confidence | {m['mean_confidence']:.3f} |",
        f"| usable samples (answer gate) | {_share(m.get('usable_sample_share'))} |",
        f"| cited facts verified | {_share(m.get('verified_fact_share'))} |",
        f"| diagnoses coded (ICD-10-CM) | {_share(m.get('coded_diagnosis_share'))} |",
        f"| seconds per item | {m['seconds_per_item']} |",
        f"| completion tokens per item | {m['completion_tokens_per_item']} |",
        "",
        "![reliability diagram](reliability.png)",
        "",
    ]
    if m.get("gate_note"):
        lines[-3:-3] = [f"Not applicable: {m['gate_note']}.", ""]
    paths = [out_dir / "report.json", out_dir / "report.md", out_dir / "reliability.png"]
    paths[0].write_text(json.dumps(document, indent=2, sort_keys=True))
    paths[1].write_text("\n".join(lines))
    paths[2].write_bytes(bytes(report.reliability_png))
    return paths

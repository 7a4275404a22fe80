"""``manage.py evaluate``: labelled multiple-choice vignettes (the MedQA jsonl shape:
``question``, ``options`` {A..}, ``answer_idx``) through the same model server, the same
sampling, the same trace and answer checks and the same confidence method as a case, and a
report of how well the confidence matched correctness.

An item whose samples all failed counts as wrong with confidence 0: a model that cannot
answer has not earned confidence.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reasoning import metrics, prompts
from reasoning.client import ModelClient, ModelRequestRejected, ModelResponseInvalid
from reasoning.confidence import METHOD, combine
from reasoning.parsing import parse_choice
from reasoning.pool import ModelPool
from reasoning.schemas import McqAnswer, mcq_response_format

BINS = 10


class McqItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    question: str = Field(min_length=1, max_length=20_000)
    options: dict[str, str] = Field(min_length=2, max_length=10)
    answer_idx: str

    @model_validator(mode="after")
    def _letters(self) -> McqItem:
        for letter in self.options:
            if len(letter) != 1 or not "A" <= letter <= "J":
                raise ValueError(f"option keys must be single letters A-J, got {letter!r}")
        if self.answer_idx not in self.options:
            raise ValueError(f"answer_idx {self.answer_idx!r} is not one of the options")
        return self


class DatasetError(ValueError):
    pass


@dataclass(frozen=True)
class Dataset:
    name: str
    sha256: str
    items: list[McqItem]


def load_dataset(path: Path, *, limit: int | None = None) -> Dataset:
    """Read a jsonl file; a bad line is an error naming the line, not a skipped item."""
    data = path.read_bytes()
    items = []
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(McqItem.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"]) or "(line)"
            raise DatasetError(f"{path.name} line {number}: {loc}: {first['msg']}") from exc
        if limit is not None and len(items) >= limit:
            break
    if not items:
        raise DatasetError(f"{path.name} holds no items")
    # The hash covers the items actually run, so a --limit run is not mistaken for the whole.
    digest = hashlib.sha256(data if limit is None else _canonical(items)).hexdigest()
    return Dataset(name=path.name, sha256=digest, items=items)


def _canonical(items: list[McqItem]) -> bytes:
    return "\n".join(json.dumps(i.model_dump(), sort_keys=True) for i in items).encode()


@dataclass
class ItemResult:
    index: int
    gold: str
    predicted: str | None
    correct: bool
    confidence: float
    components: dict[str, Any]
    error: str
    trace_source: str
    completion_tokens: int
    seconds: float
    samples: list[dict[str, Any]] = field(default_factory=list)


def sampling_parameters() -> dict[str, Any]:
    return {
        "n": settings.BEDSIDE_SAMPLES,
        "temperature": settings.BEDSIDE_TEMPERATURE,
        "top_p": settings.BEDSIDE_TOP_P,
        "max_tokens": settings.BEDSIDE_EVAL_MAX_TOKENS,
        "logprobs": True,
    }


def evaluate_item(client: ModelClient | ModelPool, index: int, item: McqItem) -> ItemResult:
    """One vignette; ModelUnavailable propagates (the whole evaluation stops, visibly)."""
    prompt = prompts.render_mcq(item.question, item.options)
    params = sampling_parameters()
    started = time.monotonic()
    try:
        result = client.chat(
            messages=prompt.messages(),
            response_format=mcq_response_format(list(item.options)),
            **params,
        )
    except (ModelRequestRejected, ModelResponseInvalid) as exc:
        return ItemResult(
            index, item.answer_idx, None, False, 0.0, {}, str(exc)[:300], "", 0,
            time.monotonic() - started,
        )  # fmt: skip
    samples = [parse_choice(c, schema=McqAnswer) for c in result.completion.choices]
    confidence = combine(samples, requested=params["n"])
    usage = result.completion.usage
    tokens = usage.completion_tokens if usage else 0
    if confidence is None:
        error = "; ".join(f"sample {s.index}: {s.error}" for s in samples)[:300]
        return ItemResult(
            index, item.answer_idx, None, False, 0.0, {}, f"no usable sample ({error})", "",
            tokens, result.latency_s, [s.summary() for s in samples],
        )  # fmt: skip
    predicted = confidence.top_diagnosis
    chosen = next(s for s in samples if s.index == confidence.chosen_index)
    return ItemResult(
        index=index,
        gold=item.answer_idx,
        predicted=predicted,
        correct=predicted == item.answer_idx,
        confidence=confidence.value,
        components=confidence.components,
        error="",
        trace_source=chosen.trace_source.value,
        completion_tokens=tokens,
        seconds=result.latency_s,
        samples=[s.summary() for s in samples],
    )


Progress = Callable[[int, int, float], None]


def run_items(
    client: ModelClient | ModelPool,
    dataset: Dataset,
    *,
    concurrency: int,
    progress: Progress | None = None,
) -> tuple[list[ItemResult], float]:
    """Items in flight ``concurrency`` at a time, so the server batches them."""
    started = time.monotonic()
    results: list[ItemResult] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [
            pool.submit(evaluate_item, client, i, item) for i, item in enumerate(dataset.items)
        ]
        try:
            for future in as_completed(futures):
                results.append(future.result())
                if progress:
                    progress(len(results), len(futures), time.monotonic() - started)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    results.sort(key=lambda r: r.index)
    return results, time.monotonic() - started


def summarise(results: list[ItemResult]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    confidence = [r.confidence for r in results]
    correct = [r.correct for r in results]
    bins = metrics.reliability_bins(confidence, correct, bins=BINS)
    answered = [r for r in results if r.predicted is not None]
    summary = {
        "items": len(results),
        "answered": len(answered),
        "accuracy": round(metrics.accuracy(correct), 4),
        "brier": round(metrics.brier_score(confidence, correct), 4),
        "ece": round(metrics.expected_calibration_error(confidence, correct, bins=BINS), 4),
        "auroc": None if (a := metrics.auroc(confidence, correct)) is None else round(a, 4),
        "mean_confidence": round(sum(confidence) / len(confidence), 4) if confidence else 0.0,
        "trace_sources": _count(r.trace_source or "none" for r in results),
        "failures": _count(r.error.split(":")[0] for r in results if r.error),
        **gate_metrics(results),
    }
    return summary, [asdict(b) for b in bins]


# A multiple-choice answer is a letter: it cites no case facts and names no diagnosis to
# code, so of the answer gate's measures only the usable-sample share applies here.
GATE_NOT_APPLICABLE = (
    "verified_fact_share and coded_diagnosis_share do not apply to multiple-choice "
    "vignettes (the answer is an option letter: no cited facts, no diagnosis of its own)"
)


def gate_metrics(results: list[ItemResult]) -> dict[str, Any]:
    """What the answer gate lets count, over every sample of every item; the same
    measures a case run stores per sample (``usable``, ``cited_facts``, ``verified_facts``,
    ``diagnoses``, ``coded_diagnoses``), None where nothing was there to measure."""
    samples = [s for r in results for s in r.samples]

    def share(part: str, whole: str) -> float | None:
        total = sum(s.get(whole) or 0 for s in samples)
        return round(sum(s.get(part) or 0 for s in samples) / total, 4) if total else None

    usable = sum(1 for s in samples if s.get("usable"))
    return {
        "usable_sample_share": round(usable / len(samples), 4) if samples else None,
        "verified_fact_share": share("verified_facts", "cited_facts"),
        "coded_diagnosis_share": share("coded_diagnoses", "diagnoses"),
        "gate_note": GATE_NOT_APPLICABLE,
    }


def _count(values: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def reliability_png(bins: list[dict[str, Any]], *, title: str, subtitle: str) -> bytes:
    """The reliability diagram: accuracy per confidence bin against the diagonal, with each
    bin's item count. Drawn with Pillow and its bundled font (nothing fetched)."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, left, right, top, bottom = 720, 720, 80, 30, 90, 80
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + x * plot_w, top + (1 - y) * plot_h

    draw.text((left, 20), title, fill="black", font=ImageFont.load_default(size=16))
    draw.text((left, 46), subtitle, fill="#444", font=small)
    for tick in range(11):
        v = tick / 10
        draw.line([xy(v, 0), xy(v, 1)], fill="#eee")
        draw.line([xy(0, v), xy(1, v)], fill="#eee")
        draw.text((xy(v, 0)[0] - 10, height - bottom + 8), f"{v:.1f}", fill="black", font=small)
        draw.text((left - 36, xy(0, v)[1] - 7), f"{v:.1f}", fill="black", font=small)
    draw.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    draw.line([xy(0, 0), xy(1, 1)], fill="#888", width=2)
    for b in bins:
        x0, y0 = xy(b["lower"], b["accuracy"])
        x1, y1 = xy(b["upper"], 0)
        draw.rectangle([x0 + 2, y0, x1 - 2, y1], fill="#5b8fd6", outline="#2a5ea8")
        cx, cy = xy(b["mean_confidence"], b["mean_confidence"])
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill="#d6604d")
        draw.text((x0 + 4, min(y0, y1 - 16) - 16), f"n={b['count']}", fill="black", font=small)
    draw.text(
        (left + plot_w / 2 - 110, height - 40),
        "confidence (bars: accuracy; dots: mean confidence)",
        fill="black",
        font=font,
    )
    draw.text((10, top - 24), "accuracy", fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def report_title(model_revision: str, prompt_version: str, dataset: Dataset) -> tuple[str, str]:
    return (
        f"Reliability of {model_revision}",
        f"prompt {prompt_version}, {METHOD}; data set {dataset.name} "
        f"(sha256 {dataset.sha256[:12]}…), {len(dataset.items)} items",
    )

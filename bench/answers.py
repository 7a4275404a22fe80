"""What the real model answers, case by case: the measurement of issue 15.

For every held-out-style case (``tests/data/heldout/``, or ``--cases DIR``) it runs
Bedside's own engine exactly as a worker does, ``reasoning.services.case_answer`` (prompt,
model server, parsing, checks, confidence), one case at a time, and counts:

- samples requested and usable (the usable-sample rate);
- cited facts, and how many are verified: normalised (case-folded, punctuation and
  whitespace collapsed), the fact is one of the case's own values or a run of whole words
  of the case's text (the case as the prompt renders it, and its raw values);
- diagnoses, and how many are coded (``reasoning.coding.code_diagnosis`` where that module
  exists, else "n/a"; a code the answer itself carries is taken as is);
- duplicate diagnoses within a sample, and junk items (punctuation only, booleans,
  likelihood words, identifiers made of letters, digits and hyphens, bare numbers);
- the model's time per case (the HTTP call's wall time) and its prompt/completion tokens.

Counts are taken three ways: over the usable samples (what counts towards the answer),
over the chosen sample (what the clinician is shown), and over every sample whose raw
text parses as JSON (what the model wrote, before any check). The answer's shape is read
in one place, ``answer_items``, which takes today's answer (facts are strings) and a
checked one (items or facts as dicts with ``text``).

    python bench/answers.py [--cases DIR] [--out FILE] [--limit N]

Writes the JSON to ``--out`` (default ``bench/results/answers-<UTC time>.json``), a
Markdown table beside it (same name, ``.md``), and prints the table. It runs in a
database of its own (``bedside_bench`` on the server ``DATABASE_URL`` names, unless
``DATABASE_URL`` already names it) against the model server of ``BEDSIDE_MODEL_BASE_URL``
with the usual ``BEDSIDE_SAMPLES`` / ``BEDSIDE_MAX_TOKENS``. Sampling is not seeded (a
worker's is not): two runs differ by chance.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
DEFAULT_CASES = ROOT / "tests" / "data" / "heldout"
BENCH_DB = os.environ.get("BENCH_DATABASE_NAME", "bedside_bench")


def log(message: str) -> None:
    print(f"[answers] {message}", file=sys.stderr, flush=True)


# --- set-up: a database of the benchmark's own --------------------------------------------


def setup_django() -> None:
    from bedside import paths

    base = os.environ.get("DATABASE_URL") or paths.owner_database_url()
    parts = urlsplit(base)
    url = urlunsplit(parts._replace(path=f"/{BENCH_DB}"))
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bedside.settings")
    import psycopg

    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    subprocess.run([PYTHON, str(ROOT / "manage.py"), "migrate", "-v0"], check=True)
    import django

    django.setup()


# --- the checks: plain functions, no Django --------------------------------------------------

_NON_WORD = re.compile(r"[\W_]+")
_WHOLE_FLOAT = re.compile(r"(\d)\.0\b")
BOOLEANS = frozenset(["true", "false", "yes", "no", "none", "null", "n a", "na", "unknown"])
LIKELIHOODS = frozenset(
    ["high", "moderate", "low", "medium", "likely", "unlikely", "possible", "probable"]
)
# One token of letters and digits joined by two or more hyphens ("mildred-9-19-20-11-20"),
# with a digit in it; "COVID-19" is not one.
_IDENTIFIER = re.compile(r"^(?=.*\d)\w+(?:-\w+){2,}$")
SKIPPED_KEYS = frozenset(["external_id", "priority", "question"])  # not findings
VITAL_WORDS = {
    "heart_rate": ("heart rate", "hr", "pulse"),
    "systolic_bp": ("systolic bp", "sbp", "systolic blood pressure"),
    "diastolic_bp": ("diastolic bp", "dbp", "diastolic blood pressure"),
    "respiratory_rate": ("respiratory rate", "rr"),
    "temperature_c": ("temperature", "temp"),
    "spo2": ("spo2", "oxygen saturation", "sao2"),
    "weight_kg": ("weight",),
}


def normalise(text: str) -> str:
    """Case-folded words, punctuation and whitespace collapsed to single spaces."""
    return " ".join(_NON_WORD.sub(" ", str(text).casefold()).split())


def _scalars(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in SKIPPED_KEYS:
                yield from _scalars(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scalars(item)
    elif isinstance(node, (str, int, float)) and not isinstance(node, bool):
        yield str(node)


@dataclass(frozen=True)
class CaseText:
    """A case's own values and texts, normalised, to check a cited fact against."""

    values: frozenset[str]
    texts: tuple[str, ...]
    # The case's fact ids (F1, F2, ...) and their texts, where the engine lists facts: a
    # raw answer cites ids, which read as the texts they stand for.
    ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, case_input: dict[str, Any]) -> CaseText:
        from reasoning.prompts import case_summary

        raw = list(_scalars(case_input))
        values = {normalise(v) for v in raw}
        texts = [case_summary(case_input), *raw]
        for key, value in (case_input.get("vitals") or {}).items():
            if value is None:
                continue
            for word in VITAL_WORDS.get(key, ()):
                texts.append(f"{word} {value}")
        for lab in case_input.get("labs") or []:
            texts.append(f"{lab['name']} {lab['value']} {lab.get('unit', '')}")
        # "32.0 mmol/L" is also written "32 mmol/L"
        texts += [_WHOLE_FLOAT.sub(r"\1", t) for t in texts if _WHOLE_FLOAT.search(t)]
        values |= {normalise(_WHOLE_FLOAT.sub(r"\1", v)) for v in raw}
        ids: dict[str, str] = {}
        try:
            from reasoning.facts import case_facts
        except ImportError:
            pass
        else:
            ids = {f.id: f.text for f in case_facts(case_input)}
            texts += ids.values()
            values |= {normalise(t) for t in ids.values()}
        return cls(
            ids=ids,
            values=frozenset(v for v in values if v),
            texts=tuple(f" {normalise(t)} " for t in texts if normalise(t)),
        )

    def verifies(self, fact: str) -> bool:
        """The fact is one of the case's values, or a run of whole words of its text."""
        n = normalise(fact)
        if len(n) < 2:  # nothing, or a lone letter
            return False
        return n in self.values or any(f" {n} " in text for text in self.texts)


def junk_reason(text: str) -> str:
    """Why an item is no answer at all ('' when it may be one)."""
    n = normalise(text)
    if not n:
        return "punctuation"
    if n in BOOLEANS:
        return "boolean"
    if n in LIKELIHOODS:
        return "likelihood word"
    if n.replace(" ", "").isdigit():
        return "number"
    if _IDENTIFIER.match(str(text).strip()):
        return "identifier"
    return ""


# --- the one place that knows the answer's shape --------------------------------------------


@dataclass(frozen=True)
class Item:
    section: str  # differential | next_steps | red_flags
    text: str
    facts: tuple[str, ...]
    code: str = ""  # a code the answer itself carries (a checked answer), else ""


_TEXT_KEYS = {"differential": "diagnosis", "next_steps": "action", "red_flags": "flag"}
_FACT_KEYS = ("supporting_facts", "based_on", "facts", "cited_facts")
_CODE_KEYS = ("code", "icd10", "icd10cm", "icd_10_cm")


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("text") or value.get("display") or value.get("quote") or "")
    return "" if value is None else str(value)


def _code_of(value: Any) -> str:
    """The code a dict carries (``code``, or a nested coding's ``code``); '' otherwise."""
    if not isinstance(value, dict):
        return ""
    for key in _CODE_KEYS:
        found = value.get(key)
        if found:
            return _code_of(found) if isinstance(found, dict) else str(found)
    return ""


def _shown(sample: Any) -> Any:
    """The sample's checked answer when the engine has an answer gate, else its answer."""
    checked = getattr(sample, "checked", None)
    return checked if checked is not None else sample.assessment


def answer_items(answer: Any) -> list[Item]:
    """Every diagnosis, next step and red flag of an answer with the facts it cites.

    ``answer`` is a validated answer (a pydantic model) or the raw JSON (a dict); items and
    facts may be strings (today) or dicts with ``text`` (a checked answer)."""
    if answer is None:
        return []
    data = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else answer
    if not isinstance(data, dict):
        return []
    items = []
    for section, text_key in _TEXT_KEYS.items():
        entries = data.get(section)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                value = entry.get(text_key, entry.get("text"))
                text = _text_of(value)
                facts_value: Any = next((entry[k] for k in _FACT_KEYS if k in entry), [])
                facts = facts_value if isinstance(facts_value, list) else [facts_value]
                code = _code_of(value) or _code_of(entry)
            else:
                text, facts, code = _text_of(entry), [], ""
            items.append(Item(section, text, tuple(_text_of(f) for f in facts), code))
    return items


# --- counting ---------------------------------------------------------------------------------


def load_coder() -> Callable[[str], str] | None:
    """``text -> code`` ('' when unmapped) from ``reasoning.coding``, or None without it."""
    try:
        from reasoning import coding
    except ImportError:
        return None
    code_diagnosis = getattr(coding, "code_diagnosis", None)
    if code_diagnosis is None:
        return None

    def coder(text: str) -> str:
        result = code_diagnosis(text)
        if isinstance(result, (tuple, list)):
            result = result[0] if result else None
        if result is None or isinstance(result, str):
            return result or ""
        return _code_of(result if isinstance(result, dict) else vars(result))

    return coder


@dataclass
class Counts:
    samples: int = 0
    diagnoses: int = 0
    coded: int = 0
    duplicate_diagnoses: int = 0
    unsupported_diagnoses: int = 0  # no verified cited fact
    items: int = 0
    junk_items: int = 0
    junk_red_flags: int = 0
    cited_facts: int = 0
    verified_facts: int = 0
    junk: list[str] = field(default_factory=list)

    @classmethod
    def from_summary(cls, data: dict[str, Any]) -> Counts:
        """Back from a written report (``--merge``); junk keeps only its examples."""
        names = [name for name in cls.__dataclass_fields__ if name != "junk"]
        values = {name: data[name] if isinstance(data[name], int) else 0 for name in names}
        return cls(**values, junk=list(data.get("junk_examples", [])))

    def add(self, other: Counts) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


def count(answers: Iterable[Any], case: CaseText, coder: Callable[[str], str] | None) -> Counts:
    out = Counts()
    for answer in answers:
        out.samples += 1
        seen_text: set[str] = set()
        seen_code: set[str] = set()
        for item in answer_items(answer):
            facts = [case.ids.get(f, f) for f in item.facts]
            verified = [f for f in facts if case.verifies(f)]
            out.items += 1
            out.cited_facts += len(facts)
            out.verified_facts += len(verified)
            reason = junk_reason(item.text)
            if reason:
                out.junk_items += 1
                out.junk.append(f"{item.section}: {item.text!r} ({reason})")
                if item.section == "red_flags":
                    out.junk_red_flags += 1
            if item.section != "differential":
                continue
            out.diagnoses += 1
            if not verified:
                out.unsupported_diagnoses += 1
            code = item.code or (coder(item.text) if coder else "")
            if code:
                out.coded += 1
            key = normalise(item.text)
            if key in seen_text or (code and code in seen_code):
                out.duplicate_diagnoses += 1
            seen_text.add(key)
            if code:
                seen_code.add(code)
    return out


def raw_answers(result: Any) -> list[Any]:
    """The JSON every choice's text holds, before any check; None where it does not parse."""
    from reasoning.parsing import split_think

    out = []
    for choice in result.completion.choices if result is not None else []:
        _, text = split_think(choice.message.content or "")
        try:
            out.append(json.loads(text))
        except ValueError:
            out.append(None)
    return out


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(counts: Counts, *, coded: bool) -> dict[str, Any]:
    data = {k: v for k, v in vars(counts).items() if k != "junk"}
    data["verified_fact_rate"] = rate(counts.verified_facts, counts.cited_facts)
    data["coded_diagnosis_rate"] = rate(counts.coded, counts.diagnoses) if coded else "n/a"
    if not coded:
        data["coded"] = "n/a"
    data["junk_examples"] = counts.junk[:8]
    return data


def run_case(
    name: str, case_input: dict[str, Any], coder: Callable[[str], str] | None
) -> dict[str, Any]:
    from reasoning.client import ModelUnavailable
    from reasoning.services import case_answer

    case = CaseText.of(case_input)
    for attempt in (1, 2):  # a worker hands the case back once the server answers nothing
        started = time.monotonic()
        try:
            answer = case_answer(case_input=case_input)
            break
        except ModelUnavailable as exc:
            log(f"{name}: attempt {attempt}: model unavailable: {exc}")
            if attempt == 2:
                return {"case": name, "error": f"model unavailable: {exc}"}
    wall = time.monotonic() - started
    result = answer.result
    usage = result.completion.usage if result else None
    usable = [s for s in answer.samples if s.usable]
    chosen = answer.chosen
    return {
        "case": name,
        "samples_requested": answer.parameters["n"],
        "samples_returned": len(answer.samples),
        "samples_usable": len(usable),
        "completed": answer.completed,
        "failure": answer.failure,
        "sample_errors": [s.error for s in answer.samples if not s.usable],
        "top_diagnosis": chosen.top_answer if chosen else None,
        "confidence": answer.confidence.value if answer.confidence else None,
        "model_s": round(result.latency_s, 2) if result else None,
        "case_answer_s": round(wall, 2),
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
        "finish_reasons": [s.finish_reason for s in answer.samples],
        # What counts and what is shown: the checked answer where the engine checks one.
        "usable_samples": count([_shown(s) for s in usable], case, coder),
        "shown": count([_shown(chosen)] if chosen else [], case, coder),
        "raw": count([a for a in raw_answers(result) if a is not None], case, coder),
    }


def totals(rows: list[dict[str, Any]], *, coded: bool) -> dict[str, Any]:
    ran = [r for r in rows if "error" not in r]
    requested = sum(r["samples_requested"] for r in ran)
    usable = sum(r["samples_usable"] for r in ran)
    out: dict[str, Any] = {
        "cases": len(rows),
        "cases_run": len(ran),
        "cases_completed": sum(1 for r in ran if r["completed"]),
        "samples_requested": requested,
        "samples_usable": usable,
        "usable_sample_rate": rate(usable, requested),
    }
    for view in ("usable_samples", "shown", "raw"):
        counts = Counts()
        for r in ran:
            counts.add(r[view])
        out[view] = summarise(counts, coded=coded)
    shown_bad = [
        r["case"]
        for r in ran
        if r["completed"]
        and (
            r["shown"].unsupported_diagnoses
            or r["shown"].duplicate_diagnoses
            or r["shown"].junk_red_flags
        )
    ]
    out["completed_cases_showing_unsupported_duplicate_or_junk"] = len(shown_bad)
    model_s = [r["model_s"] for r in ran if r["model_s"] is not None]
    out["model_s_per_case_mean"] = round(statistics.mean(model_s), 2) if model_s else None
    out["model_s_per_case_median"] = round(statistics.median(model_s), 2) if model_s else None
    out["prompt_tokens_per_case_mean"] = (
        round(statistics.mean(r["prompt_tokens"] for r in ran), 1) if ran else None
    )
    out["completion_tokens_per_case_mean"] = (
        round(statistics.mean(r["completion_tokens"] for r in ran), 1) if ran else None
    )
    return out


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, float) else str(value)


def table(report: dict[str, Any]) -> str:
    t = report["totals"]
    u, s, w = t["usable_samples"], t["shown"], t["raw"]
    m = report["model"]
    lines = [
        f"# Answers on {t['cases']} held-out-style cases — {report['label']}",
        "",
        f"{report['started_at']}, model {m['name']} ({m['revision'] or m['base_url']}), "
        f"n={m['samples']}, max_tokens={m['max_tokens']}, temperature {m['temperature']}, "
        f"code {report['git']}; coding module: {'yes' if report['coding'] else 'no'}; "
        f"{report['cases_done']}/{report['cases_total']} cases done, {report['concurrency']} "
        f"at a time, {report.get('seconds_total')} s in all",
        "",
        "| measure | usable samples | shown (chosen sample) | raw JSON, every sample |",
        "|---|---|---|---|",
        f"| usable-sample rate | {t['samples_usable']}/{t['samples_requested']} = "
        f"{_pct(t['usable_sample_rate'])} | | |",
        f"| verified-fact rate | {u['verified_facts']}/{u['cited_facts']} = "
        f"{_pct(u['verified_fact_rate'])} | {s['verified_facts']}/{s['cited_facts']} = "
        f"{_pct(s['verified_fact_rate'])} | {w['verified_facts']}/{w['cited_facts']} = "
        f"{_pct(w['verified_fact_rate'])} |",
        f"| coded-diagnosis rate | {u['coded']}/{u['diagnoses']} = "
        f"{_pct(u['coded_diagnosis_rate'])} | {s['coded']}/{s['diagnoses']} = "
        f"{_pct(s['coded_diagnosis_rate'])} | {w['coded']}/{w['diagnoses']} = "
        f"{_pct(w['coded_diagnosis_rate'])} |",
        f"| diagnoses without a verified fact | {u['unsupported_diagnoses']} | "
        f"{s['unsupported_diagnoses']} | {w['unsupported_diagnoses']} |",
        f"| duplicate diagnoses | {u['duplicate_diagnoses']} | {s['duplicate_diagnoses']} | "
        f"{w['duplicate_diagnoses']} |",
        f"| junk items (of which red flags) | {u['junk_items']}/{u['items']} "
        f"({u['junk_red_flags']}) | {s['junk_items']}/{s['items']} ({s['junk_red_flags']}) | "
        f"{w['junk_items']}/{w['items']} ({w['junk_red_flags']}) |",
        "",
        f"Cases completed: {t['cases_completed']}/{t['cases_run']}; completed cases showing a "
        "diagnosis without a verified fact, a duplicate diagnosis or a junk red flag: "
        f"{t['completed_cases_showing_unsupported_duplicate_or_junk']}.",
        f"Model time per case: mean {t['model_s_per_case_mean']} s, median "
        f"{t['model_s_per_case_median']} s; prompt tokens per case (mean) "
        f"{t['prompt_tokens_per_case_mean']}, completion tokens per case (mean) "
        f"{t['completion_tokens_per_case_mean']}.",
        "",
        "| case | usable | facts verified | dx coded | dup dx | junk | model s | "
        "prompt/completion tok | shown top diagnosis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["cases"]:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['error']} | | | | | | | |")
            continue
        v = r["usable_samples"]
        top = (r["top_diagnosis"] or "— " + (r["failure"] or "")[:60]).replace("|", "/")
        lines.append(
            f"| {r['case']} | {r['samples_usable']}/{r['samples_requested']} | "
            f"{v['verified_facts']}/{v['cited_facts']} | {v['coded']}/{v['diagnoses']} | "
            f"{v['duplicate_diagnoses']} | {v['junk_items']}/{v['items']} | {r['model_s']} | "
            f"{r['prompt_tokens']}/{r['completion_tokens']} | {top[:70]} |"
        )
    lines += [
        "",
        "Counts over usable samples unless the column says otherwise. A cited fact is verified "
        "when, normalised, it is one of the case's values or a run of whole words of the case "
        "as rendered. Junk: punctuation only, booleans, likelihood words, bare numbers, "
        "identifiers of letters, digits and hyphens.",
    ]
    return "\n".join(lines) + "\n"


def git_describe() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
        branch = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--abbrev-ref", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{branch.stdout.strip()}@{out.stdout.strip()}"


def report_write(
    rows: list[dict[str, Any]], meta: dict[str, Any], out: Path, *, coded: bool
) -> str:
    """Write the JSON and the Markdown table of the cases done so far; return the table."""
    rows = sorted(rows, key=lambda r: r["case"])
    report = {**meta, "cases_done": len(rows)}
    report["totals"] = totals(rows, coded=coded)
    report["cases"] = [
        {k: summarise(v, coded=coded) if isinstance(v, Counts) else v for k, v in r.items()}
        for r in rows
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    markdown = table(report)
    out.with_suffix(".md").write_text(markdown)
    return markdown


def merge(parts: list[Path], out: Path | None, label: str) -> int:
    """One report from reports of parts of one run (the same code, model and settings)."""
    if out is None:
        log("--merge needs --out")
        return 2
    reports = [json.loads(part.read_text()) for part in parts]
    rows: dict[str, dict[str, Any]] = {}
    for report in reports:
        for row in report["cases"]:
            row = {
                k: Counts.from_summary(v) if k in ("usable_samples", "shown", "raw") else v
                for k, v in row.items()
            }
            rows.setdefault(row["case"], row)
    first = reports[0]
    meta = {k: v for k, v in first.items() if k not in ("cases", "totals", "cases_done")}
    meta["label"] = label or first["label"]
    meta["cases_total"] = len(rows)
    meta["parts"] = [
        {"file": str(part), "cases": len(r["cases"]), "concurrency": r.get("concurrency"),
         "seconds_total": r.get("seconds_total"), "started_at": r.get("started_at")}
        for part, r in zip(parts, reports, strict=True)
    ]  # fmt: skip
    meta["concurrency"] = "+".join(str(r.get("concurrency")) for r in reports)
    meta["seconds_total"] = max(r.get("seconds_total") or 0 for r in reports)
    print(report_write(list(rows.values()), meta, out, coded=bool(first["coding"])))
    log(f"written: {out} and {out.with_suffix('.md')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/answers.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N cases")
    parser.add_argument("--label", default="", help="e.g. BEFORE or AFTER, for the table")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="no model calls: join reports of parts of one run into --out (a case in "
        "several keeps its first)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="cases in flight at once (a worker's threads); model time per case then "
        "includes waiting for the others: compare runs at the same concurrency",
    )
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.label)
    started_at = datetime.now(UTC)
    files = sorted(p for p in args.cases.glob("*.json") if p.name != "expected.json")
    if args.limit:
        files = files[: args.limit]
    if not files:
        log(f"no cases in {args.cases}")
        return 2
    setup_django()
    from django.conf import settings
    from django.db import connection

    from devtools import localstack
    from reasoning.services import model_revision

    if not localstack.model_healthy(settings.BEDSIDE_MODEL_BASE_URL):
        log(f"the model server at {settings.BEDSIDE_MODEL_BASE_URL} does not answer")
        return 2
    coder = load_coder()
    if coder is not None:
        coder("warm-up")  # the code set loads on first use; not the model's time
    expected_file = args.cases / "expected.json"
    expected = json.loads(expected_file.read_text()) if expected_file.exists() else {}
    out = args.out or ROOT / "bench" / "results" / f"answers-{started_at:%Y-%m-%dT%H%M%SZ}.json"
    meta = {
        "label": args.label or git_describe(),
        "started_at": started_at.isoformat(timespec="seconds"),
        "git": git_describe(),
        "coding": coder is not None,
        "cases_dir": str(args.cases),
        "cases_total": len(files),
        "concurrency": args.concurrency,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "model": {
            "name": settings.BEDSIDE_MODEL_NAME,
            "base_url": settings.BEDSIDE_MODEL_BASE_URL,
            "revision": model_revision(),
            "samples": settings.BEDSIDE_SAMPLES,
            "max_tokens": settings.BEDSIDE_MAX_TOKENS,
            "temperature": settings.BEDSIDE_TEMPERATURE,
        },
    }

    def one(path: Path) -> dict[str, Any]:
        try:
            row = run_case(path.name, json.loads(path.read_text()), coder)
        finally:
            connection.close()  # this thread's own
        row["expected_diagnosis"] = expected.get(path.name, {}).get("expected_diagnosis", "")
        return row

    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=max(1, args.concurrency)) as pool:
        for row in pool.map(one, files):
            rows.append(row)
            meta["seconds_total"] = round((datetime.now(UTC) - started_at).total_seconds(), 1)
            markdown = report_write(rows, meta, out, coded=coder is not None)
            log(
                f"{len(rows)}/{len(files)} {row['case']}: usable {row.get('samples_usable')}/"
                f"{row.get('samples_requested')}, model {row.get('model_s')} s, "
                f"top {row.get('top_diagnosis')!r}"
            )
    print(markdown)
    log(f"written: {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

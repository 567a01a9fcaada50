"""Audit an existing report corpus (e.g. a paper's released CSV) against a dataset's
own metadata, with the checks the ``reports`` stage runs on its own reports.

Each report is matched to a recording or a subject of the dataset by its key (a
recording id such as ``circor2022/50782_AV`` or ``50782_AV``, or a subject id such
as ``circor2022:50782`` or ``50782``). A subject's facts are those its recordings
agree on (a patient-level report is not held to one recording's site). Every failed
check becomes a flag with its reason and, where one sentence alone triggers it, that
sentence. ``acula audit-reports`` is the command line.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from acula_pipeline.reports.checks import CHECKS, CheckCfg, Checker, sentences
from acula_pipeline.reports.facts import FACT_EXTRACTORS, allowed_facts, unit_facts
from acula_pipeline.runtime import spreadsheet_safe
from acula_pipeline.sources import scan_source

FLAG_COLUMNS = ("key", "matched", "level", "check", "reason", "sentence", "report")


class AuditError(ValueError):
    """The corpus or the dataset cannot be audited (named file, column or value)."""


@dataclass
class Audit:
    """Per-report verdicts, one row per flag, and the counts."""

    reports: pd.DataFrame  # key, matched, level, passed, reasons
    flags: pd.DataFrame  # FLAG_COLUMNS
    counts: dict[str, Any]


def read_corpus(path: Path, key_column: str, text_column: str) -> pd.DataFrame:
    """The corpus as ``key`` and ``report`` columns (CSV, TSV, Parquet or JSON
    lines, by suffix); keys are read as text, so ``00123`` stays ``00123``."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            table = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            table = pd.read_json(path, lines=True, dtype=False)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise AuditError(f"{path}: cannot be read as a table ({exc})") from exc
    missing = [c for c in (key_column, text_column) if c not in table.columns]
    if missing:
        raise AuditError(
            f"{path}: no column {missing[0]!r}; columns: {list(table.columns)}"
        )
    return pd.DataFrame(
        {
            "key": table[key_column].astype(str).str.strip(),
            "report": table[text_column].fillna("").astype(str),
        }
    )


def dataset_facts(
    adapter: str,
    root: Path,
    fields: list[str] | None,
    quarantined: dict[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
    """Facts per recording and per subject of a dataset copy, and every spelling
    of a key → (level, id). Files the adapter quarantined are not there; their
    keys → the adapter's reason go into ``quarantined`` when it is given.

    Args:
        adapter: The source adapter (``circor2022``, ``icbhi2017`` …).
        root: The dataset's root folder, as for ``ingest``.
        fields: The facts a report may be held to (the allow-list the reports were
            written from); None: every fact the extractor derives.
    """
    if adapter not in FACT_EXTRACTORS:
        raise AuditError(
            f"no fact extractor for dataset {adapter!r}; known: "
            f"{sorted(FACT_EXTRACTORS)}"
        )
    scan = scan_source(adapter, root, adapter, is_synthetic=False)
    if quarantined is not None:
        for q in scan.quarantine:
            stem = Path(q["path"]).stem
            for spelling in (stem, f"{adapter}/{stem}", f"{adapter}:{stem}"):
                quarantined.setdefault(spelling, q["reason"])
    if not scan.recordings:
        raise AuditError(f"{adapter}: no readable recordings under {root}")
    facts: dict[str, dict[str, Any]] = {}
    keys: dict[str, tuple[str, str]] = {}
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for rec in scan.recordings:
        row = dict(rec)
        if isinstance(row.get("metadata"), dict):
            row["metadata"] = json.dumps(row["metadata"])
        f = unit_facts(row)
        f = allowed_facts(f, fields) if fields is not None else f
        rid, sid = str(rec["recording_id"]), str(rec["subject_id"])
        facts[rid] = f
        by_subject.setdefault(sid, []).append(f)
        for spelling in (rid, rid.split("/", 1)[-1]):
            keys.setdefault(spelling, ("recording", rid))
    for sid, all_facts in by_subject.items():
        first = all_facts[0]
        facts[sid] = {
            k: v for k, v in first.items() if all(f.get(k) == v for f in all_facts)
        }
        for spelling in (sid, sid.split(":", 1)[-1]):
            keys[spelling] = ("subject", sid)  # a subject id wins over a recording's
    return facts, keys


def _sentence(
    checker: Checker, text: str, facts: dict[str, Any], adapter: str, problem: str
) -> str:
    """The first sentence that raises ``problem`` on its own and whose removal
    clears it, or '' (a missing fact, a length: no one sentence is to blame)."""
    parts = sentences(text)
    for i, s in enumerate(parts):
        if problem not in checker(s, facts, adapter).problems:
            continue
        rest = " ".join(parts[:i] + parts[i + 1 :])
        if problem not in checker(rest, facts, adapter).problems:
            return s
    return ""


def audit_reports(
    corpus: pd.DataFrame,
    adapter: str,
    root: Path,
    fields: list[str] | None = None,
    cfg: CheckCfg | None = None,
) -> Audit:
    """Check each report of ``corpus`` (``key``, ``report``) against the metadata.

    Reports whose key matches nothing in the dataset are not checked: they are
    counted and listed as flags of check ``unmatched``, never dropped silently.
    """
    quarantined: dict[str, str] = {}
    facts, keys = dataset_facts(adapter, root, fields, quarantined)
    checker = Checker(cfg or CheckCfg())
    rows, flags = [], []
    for key, text in zip(corpus["key"], corpus["report"], strict=True):
        level, matched = keys.get(key, ("", ""))
        if not matched:
            # the key's own file, else one of its recordings (``50782`` →
            # ``50782_AV``), if the adapter quarantined it
            reason = quarantined.get(key) or next(
                (r for k, r in quarantined.items() if k.startswith(f"{key}_")), None
            )
            why = (
                f"quarantined by the {adapter} adapter: {reason}"
                if reason
                else "no recording or subject of the dataset has this key"
            )
            rows.append(
                {
                    "key": key,
                    "matched": "",
                    "level": "",
                    "passed": False,
                    "reasons": why,
                }
            )
            flags.append(
                {
                    "key": key,
                    "matched": "",
                    "level": "",
                    "check": "unmatched",
                    "reason": why,
                    "sentence": "",
                    "report": text,
                }
            )
            continue
        f = facts[matched]
        result = checker(text, f, adapter)
        rows.append(
            {
                "key": key,
                "matched": matched,
                "level": level,
                "passed": result.ok,
                "reasons": result.reasons(),
            }
        )
        for problem, check in zip(result.problems, result.problem_checks, strict=True):
            flags.append(
                {
                    "key": key,
                    "matched": matched,
                    "level": level,
                    "check": check,
                    "reason": problem,
                    "sentence": _sentence(checker, text, f, adapter, problem),
                    "report": text,
                }
            )
    table = pd.DataFrame(rows, columns=["key", "matched", "level", "passed", "reasons"])
    flag_table = pd.DataFrame(flags, columns=list(FLAG_COLUMNS))
    per_check = Counter(flag_table["check"])
    counts = {
        "dataset": adapter,
        "reports": len(table),
        "matched": int((table["matched"] != "").sum()),
        "unmatched": int((table["matched"] == "").sum()),
        "flagged": int((~table["passed"].astype(bool)).sum()),
        "flags": len(flag_table),
        "flags_by_check": {
            c: per_check[c] for c in [*CHECKS, "unmatched"] if per_check[c]
        },
        "flags_by_reason": dict(Counter(flag_table["reason"]).most_common()),
    }
    return Audit(table, flag_table, counts)


def write_audit(audit: Audit, out_dir: Path) -> dict[str, Path]:
    """``flags.csv`` (every flag), ``audit.json`` (the counts) and ``audit.html``
    (the counts and every flag, the triggering sentence highlighted)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "flags": out_dir / "flags.csv",
        "counts": out_dir / "audit.json",
        "html": out_dir / "audit.html",
    }
    # report text and keys come from the user's corpus: no formulas in the CSV
    _atomic_text(paths["flags"], spreadsheet_safe(audit.flags).to_csv(index=False))
    _atomic_text(paths["counts"], json.dumps(audit.counts, indent=2))
    _atomic_text(paths["html"], _html(audit))
    return paths


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _html(audit: Audit) -> str:
    c = audit.counts
    esc = html.escape

    def mark(report: str, sentence: str) -> str:
        if sentence and sentence in report:
            a, b = report.split(sentence, 1)
            return f"{esc(a)}<mark>{esc(sentence)}</mark>{esc(b)}"
        return esc(report)

    by_check = "".join(
        f"<tr><td>{esc(k)}</td><td>{v}</td></tr>"
        for k, v in c["flags_by_check"].items()
    )
    by_reason = "".join(
        f"<tr><td>{esc(k)}</td><td>{v}</td></tr>"
        for k, v in c["flags_by_reason"].items()
    )
    flags = "".join(
        "<tr>"
        f"<td>{esc(r.key)}</td><td>{esc(r.check)}</td><td>{esc(r.reason)}</td>"
        f"<td>{mark(r.report, r.sentence)}</td>"
        "</tr>"
        for r in audit.flags.itertuples()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Report audit: {esc(c["dataset"])}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }}
mark {{ background: #ffd27f; }}
</style></head><body>
<h1>Report audit: {esc(c["dataset"])}</h1>
<p>{c["reports"]} reports, {c["matched"]} matched to the dataset, {c["unmatched"]}
unmatched; {c["flagged"]} flagged, {c["flags"]} flags.</p>
<h2>Flags per check</h2><table><tr><th>check</th><th>flags</th></tr>{by_check}</table>
<h2>Flags per reason</h2><table><tr><th>reason</th><th>flags</th></tr>{by_reason}</table>
<h2>Every flag</h2>
<table><tr><th>key</th><th>check</th><th>reason</th><th>report (the sentence that
triggered it, where one does on its own, is marked)</th></tr>{flags}</table>
</body></html>
"""

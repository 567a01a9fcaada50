"""Precision and recall of the report checks on the labelled sets
(``tests/data/labelled_reports.jsonl``, written by ``build_labelled_reports.py``, and
``tests/data/labelled_reports_heldout.jsonl``, written by hand).

A *flag* is a report failing any check; a positive is a report labelled unfaithful
(contradiction, omission, inference or advice). Printed: precision and recall of a
flag overall and per family, each check's precision (its flags on unfaithful
reports) and recall (of the kind of error it exists for), the false flags per style of faithful report, and the first
misjudged reports of each kind.

    python benchmarks/report_checks.py [--show 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from acula_pipeline.reports.checks import CheckCfg, Checker

SET = Path(__file__).resolve().parents[1] / "tests/data/labelled_reports.jsonl"
# written by hand, before any check was run on it (README "The labelled sets")
HELDOUT = SET.with_name("labelled_reports_heldout.jsonl")
# the check that exists for each kind of error
CHECK_FOR = {
    "contradiction": "no_contradiction",
    "omission": "labels_reflected",
    "inference": "no_inference",
    "advice": "no_recommendation",
}


def _pr(tp: int, flagged: int, positives: int) -> dict[str, Any]:
    return {
        "precision": round(tp / flagged, 3) if flagged else None,
        "recall": round(tp / positives, 3) if positives else None,
        "flagged": flagged,
        "positives": positives,
    }


def score(rows: list[dict[str, Any]], checker: Checker) -> dict[str, Any]:
    """Precision/recall of a flag overall, per family and per check."""
    results = []
    for r in rows:
        res = checker(r["report"], r["facts"], r["adapter"])
        failed = {c for c, ok in res.passed.items() if not ok}
        results.append(
            {**r, "flagged": bool(failed), "failed": failed, "reasons": res.reasons()}
        )

    def overall(sub: list[dict[str, Any]]) -> dict[str, Any]:
        tp = sum(x["flagged"] and not x["faithful"] for x in sub)
        return _pr(
            tp, sum(x["flagged"] for x in sub), sum(not x["faithful"] for x in sub)
        )

    # A check's precision: the share of its flags that fall on unfaithful reports
    # (a contradiction also leaves the fact unstated, so labels_reflected flags it
    # too: that is right, not a false flag). Its recall: the share of the reports
    # with the error it exists for that it flags.
    per_check = {}
    for cat, check in CHECK_FOR.items():
        flagged = [x for x in results if check in x["failed"]]
        mine = [x for x in results if x["category"] == cat]
        m = _pr(0, len(flagged), len(mine))
        m["precision"] = (
            round(sum(not x["faithful"] for x in flagged) / len(flagged), 3)
            if flagged
            else None
        )
        m["recall"] = (
            round(sum(check in x["failed"] for x in mine) / len(mine), 3)
            if mine
            else None
        )
        per_check[check] = m
    false_flags = Counter(x["style"] for x in results if x["faithful"] and x["flagged"])
    return {
        "reports": len(results),
        "overall": overall(results),
        "by_family": {
            fam: overall([x for x in results if x["family"] == fam])
            for fam in sorted({x["family"] for x in results})
        },
        "by_check": per_check,
        "false_flags_by_style": dict(false_flags),
        "_results": results,
    }


def report(path: Path, show: int) -> dict[str, Any]:
    """Score one labelled set and print its table."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    out = score(rows, Checker(CheckCfg()))
    results = out.pop("_results")
    o = out["overall"]
    print(
        f"{path.name}: {out['reports']} labelled reports ({o['positives']} unfaithful)"
    )
    print(f"{'':24}{'precision':>10}{'recall':>8}{'flagged':>9}{'positives':>11}")

    def line(name: str, m: dict[str, Any]) -> None:
        p = "-" if m["precision"] is None else f"{m['precision']:.3f}"
        r = "-" if m["recall"] is None else f"{m['recall']:.3f}"
        print(f"{name:24}{p:>10}{r:>8}{m['flagged']:>9}{m['positives']:>11}")

    line("a flag, overall", o)
    for fam, m in out["by_family"].items():
        line(f"  {fam}", m)
    for check, m in out["by_check"].items():
        line(f"{check}", m)
    print("false flags of faithful reports, by style:", out["false_flags_by_style"])
    misses = [x for x in results if not x["faithful"] and not x["flagged"]]
    wrong = [x for x in results if x["faithful"] and x["flagged"]]
    for title, xs, why in (
        ("missed", misses, "note"),
        ("false flag", wrong, "reasons"),
    ):
        for x in xs[:show]:
            print(f"{title} [{x['id']}, {x['category']}]: {x['report']}  <- {x[why]}")
    print()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--show", type=int, default=3, help="misjudged reports per kind")
    ap.add_argument("--json", type=Path, default=None, help="write the scores here")
    ap.add_argument(
        "--set",
        type=Path,
        action="append",
        help="a labelled JSONL file (repeatable; default: both of ours)",
    )
    args = ap.parse_args()
    out = {p.name: report(p, args.show) for p in args.set or [SET, HELDOUT]}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

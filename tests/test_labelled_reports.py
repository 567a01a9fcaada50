"""The labelled report set (tests/data/labelled_reports.jsonl) and the benchmark's
scoring (benchmarks/report_checks.py)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter

from acula_pipeline.reports.checks import CHECKS, CheckCfg, Checker

from .conftest import REPO


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "report_checks", REPO / "benchmarks/report_checks.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(name: str) -> list[dict]:
    return [
        json.loads(line)
        for line in (REPO / "tests/data" / name).read_text().splitlines()
    ]


def test_the_labelled_set_is_well_formed():
    rows = _rows("labelled_reports.jsonl")
    assert len(rows) >= 300
    assert Counter(r["family"] for r in rows).keys() == {"heart", "lung", "cough"}
    assert len({r["id"] for r in rows}) == len(rows)
    kinds = Counter(r["category"] for r in rows)
    assert set(kinds) == {
        "faithful",
        "contradiction",
        "omission",
        "inference",
        "advice",
    }
    assert all(n >= 15 for n in kinds.values()), kinds
    assert len({r["style"] for r in rows}) == 5
    for r in rows:
        assert r["faithful"] == (r["category"] == "faithful")
        assert bool(r["note"]) != r["faithful"], r["id"]
        assert r["report"].strip() and r["facts"], r["id"]


def test_the_held_out_set_is_well_formed_and_apart():
    rows = _rows("labelled_reports_heldout.jsonl")
    main = {r["report"] for r in _rows("labelled_reports.jsonl")}
    assert len(rows) >= 60
    assert Counter(r["family"] for r in rows).keys() == {"heart", "lung", "cough"}
    assert len({r["id"] for r in rows}) == len(rows)
    assert not {r["report"] for r in rows} & main  # no report in both sets
    assert {r["category"] for r in rows} == {
        "faithful",
        "contradiction",
        "omission",
        "inference",
        "advice",
    }
    for r in rows:
        assert r["faithful"] == (r["category"] == "faithful")
        assert r["report"].strip() and r["facts"], r["id"]


def test_precision_and_recall_by_hand():
    """Four reports: a caught contradiction, missed advice, a faithful report
    flagged (the negation is in the clause after 'but', out of the murmur's scope)
    and a faithful one passed."""
    facts = {"murmur": "Absent", "outcome": "Normal"}
    row = {"family": "heart", "adapter": "circor2022", "facts": facts, "style": "s"}
    rows = [
        {
            **row,
            "id": "a",
            "faithful": False,
            "category": "contradiction",
            "report": "A loud murmur is present. The clinical outcome is normal.",
        },
        {
            **row,
            "id": "b",
            "faithful": False,
            "category": "advice",
            "report": "No murmur. The outcome is normal. Another visit in a year is planned.",
        },
        {
            **row,
            "id": "c",
            "faithful": True,
            "category": "faithful",
            "report": "A murmur was listened for but not heard. The outcome is normal.",
        },
        {
            **row,
            "id": "d",
            "faithful": True,
            "category": "faithful",
            "report": "No murmur was detected. The clinical outcome is normal.",
        },
    ]
    out = _benchmark().score(rows, Checker(CheckCfg()))
    failed = {x["id"]: x["failed"] for x in out["_results"]}
    assert "no_contradiction" in failed["a"] and not failed["b"] and not failed["d"]
    assert failed["c"] == {"labels_reflected", "no_contradiction"}
    assert out["overall"] == {
        "precision": 0.5,
        "recall": 0.5,
        "flagged": 2,
        "positives": 2,
    }
    contra = out["by_check"]["no_contradiction"]
    assert (contra["precision"], contra["recall"]) == (0.5, 1.0)  # a, and c wrongly
    assert out["by_check"]["no_recommendation"]["recall"] == 0.0
    assert out["false_flags_by_style"] == {"s": 1}
    assert set(out["by_check"]) <= set(CHECKS)

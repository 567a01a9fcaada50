"""From probe records to what people read: metrics.json, the Markdown table, ROC
curves (CSV for ``dvc plots`` and PNG), the before/after chart, the embedding map and
the HTML report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from acula_pipeline.evaluation.html import render_report
from acula_pipeline.evaluation.report import (
    ResultRow,
    before_after_chart,
    embedding_map,
    results_table,
    roc_table,
)
from acula_pipeline.evaluation.run import ProbeRecord
from acula_pipeline.evaluation.tasks import TaskSpec


def result_rows(records: Sequence[ProbeRecord]) -> list[ResultRow]:
    """One row per task × dataset that ran under both baseline and aligned."""
    by_key: dict[tuple[str, str], dict[str, ProbeRecord]] = {}
    for r in records:
        if r.result is not None:
            by_key.setdefault((r.spec.name, r.data.dataset), {})[r.encoder] = r
    rows = []
    for (task, dataset), encs in by_key.items():
        if "baseline" not in encs or "aligned" not in encs:
            continue
        b, a = encs["baseline"], encs["aligned"]
        assert b.result is not None and a.result is not None
        rows.append(
            ResultRow(
                task=task,
                dataset=dataset,
                metric=a.result.metric,
                baseline=(b.result.mean, b.result.std),
                aligned=(a.result.mean, a.result.std),
                protocol=str(a.data.protocol),
                n_test=len(a.result.test_y) if a.result.test_y is not None else 0,
                others={
                    e: (r.result.mean, r.result.std)
                    for e, r in encs.items()
                    if e not in ("baseline", "aligned") and r.result is not None
                },
            )
        )
    return rows


def headline(rows: Sequence[ResultRow]) -> dict[str, Any] | None:
    """Mean AUROC over classification tasks, baseline and aligned."""
    cls = [r for r in rows if r.metric == "auroc"]
    if not cls:
        return None
    return {
        "tasks": len(cls),
        "baseline": float(np.mean([r.baseline[0] for r in cls])),
        "aligned": float(np.mean([r.aligned[0] for r in cls])),
    }


def skipped_tasks(records: Sequence[ProbeRecord]) -> list[dict[str, str]]:
    """Each task × dataset that did not run, with the reason (once, not per
    encoder)."""
    seen, out = set(), []
    for r in records:
        key = (r.spec.name, r.data.dataset)
        if r.data.skipped and key not in seen:
            seen.add(key)
            out.append(
                {
                    "task": r.spec.name,
                    "dataset": r.data.dataset,
                    "reason": r.data.skipped,
                }
            )
    return out


def metrics(
    records: Sequence[ProbeRecord],
    zero_shot: Sequence[Mapping[str, Any]],
    retrieval: Sequence[Mapping[str, Any]],
    audit: Mapping[str, Any],
    synthetic: bool,
) -> dict[str, Any]:
    """``metrics.json``: per task, dataset and encoder, plus the headline."""
    probes: dict[str, Any] = {}
    for r in records:
        if r.result is None:
            continue
        res = r.result
        entry = {
            res.metric: round(res.mean, 4),
            f"{res.metric}_std": round(res.std, 4),
            "protocol": r.data.protocol,
            "n": len(res.test_y) if res.test_y is not None else 0,
            # units without a label in the class map or without an embedding
            "left_out": int(r.data.counts.get("left_out", 0)),
        }
        if res.ci95 is not None:
            entry["ci95_low"], entry["ci95_high"] = (round(v, 4) for v in res.ci95)
        if res.val_per_seed:
            entry[f"val_{res.metric}"] = round(float(np.mean(res.val_per_seed)), 4)
        probes.setdefault(r.spec.name, {}).setdefault(r.data.dataset, {})[r.encoder] = (
            entry
        )
    head = headline(result_rows(records))
    return {
        "synthetic": synthetic,
        "mean_auroc": None
        if head is None
        else {
            "tasks": head["tasks"],
            "baseline": round(head["baseline"], 4),
            "aligned": round(head["aligned"], 4),
            "delta": round(head["aligned"] - head["baseline"], 4),
        },
        "probes": probes,
        "zero_shot": {
            f"{z['task']}/{z['dataset']}": round(float(z["auroc"]), 4)
            for z in zero_shot
        },
        "retrieval": {
            str(r["dataset"]): {
                k: round(float(v), 4) for k, v in r.items() if k != "dataset"
            }
            for r in retrieval
        },
        "leakage_audit_ok": bool(audit.get("ok")),
        "skipped_tasks": len(skipped_tasks(records)),
    }


def roc_curves(records: Sequence[ProbeRecord]) -> dict[str, pd.DataFrame]:
    """``{task--dataset: fpr, baseline, aligned, …}`` for binary tasks (first seed)."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for r in records:
        res = r.result
        if res is None or r.spec.kind != "binary" or res.test_scores is None:
            continue
        assert res.test_y is not None
        curves.setdefault(f"{r.spec.name}--{r.data.dataset}", {})[r.encoder] = (
            res.test_y,
            res.test_scores[:, 1],
        )
    return {k: roc_table(v) for k, v in sorted(curves.items())}


def roc_grid(records: Sequence[ProbeRecord], synthetic: bool) -> Figure:
    """ROC curves of every binary task, one panel each."""
    import matplotlib.pyplot as plt

    tables = roc_curves(records)
    n = max(len(tables), 1)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False
    )
    for ax, (name, t) in zip(axes.flat, tables.items(), strict=False):
        for enc in t.columns[1:]:
            ax.plot(t["fpr"], t[enc], label=enc)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set_title(name.replace("--", "\n"), fontsize=8)
        ax.set_xlabel("FPR", fontsize=8)
        ax.set_ylabel("TPR", fontsize=8)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(tables) :]:
        ax.axis("off")
    fig.suptitle(
        "ROC, test split (loso: pooled held-out subjects), first probe seed"
        + (" — SYNTHETIC" if synthetic else "")
    )
    fig.tight_layout()
    return fig


def _class_names(spec: TaskSpec) -> dict[int, str]:
    """Class index → its label values ("COPD"; "Asthma/Bronchiectasis/…")."""
    labels: dict[int, list[str]] = {}
    for value, idx in (spec.classes or {}).items():
        labels.setdefault(idx, []).append(value)
    return {
        i: v[0] if len(v) == 1 else f"{v[0]}/{v[1]}" + ("/…" if len(v) > 2 else "")
        for i, v in labels.items()
    }


def map_figure(
    records: Sequence[ProbeRecord], synthetic: bool, max_points: int = 1500
) -> Figure:
    """Embedding map of the first classification task of each dataset, every
    encoder, coloured by class label."""
    panels = []
    seen = set()
    by_key: dict[tuple[str, str], dict[str, ProbeRecord]] = {}
    for r in records:
        if r.result is not None and r.spec.is_classification:
            by_key.setdefault((r.spec.name, r.data.dataset), {})[r.encoder] = r
    for (task, dataset), encs in by_key.items():
        if dataset in seen or len(encs) < 2:
            continue
        seen.add(dataset)
        first = next(iter(encs.values()))
        names = _class_names(first.spec)
        n = len(first.data.frame)
        idx = (
            np.random.default_rng(0).permutation(n)[:max_points]
            if n > max_points
            else np.arange(n)
        )
        labels = [
            names.get(int(v), str(v)) for v in first.data.frame["y"].to_numpy()[idx]
        ]
        panels.append(
            (f"{task} ({dataset})", {e: r.data.x[idx] for e, r in encs.items()}, labels)
        )
    return embedding_map(panels, synthetic)


@dataclass
class Outputs:
    metrics: dict[str, Any]
    table: str
    chart: Figure
    roc: Figure
    roc_curves: dict[str, pd.DataFrame]
    embedding_map: Figure
    html: str


def build_outputs(
    records: Sequence[ProbeRecord],
    zero_shot: Sequence[Mapping[str, Any]],
    retrieval: Sequence[Mapping[str, Any]],
    audit: Mapping[str, Any],
    validation: Mapping[str, Any],
    seeds: Sequence[int],
    synthetic: bool,
) -> Outputs:
    rows = result_rows(records)
    chart = before_after_chart(rows, synthetic)
    roc = roc_grid(records, synthetic)
    emb = map_figure(records, synthetic)
    table = pd.DataFrame(
        [
            {
                "task": r.task,
                "dataset": r.dataset,
                "protocol": r.protocol,
                "n": r.n_test,
                "metric": r.metric.upper(),
                "baseline": f"{r.baseline[0]:.3f} ± {r.baseline[1]:.3f}",
                "aligned": f"{r.aligned[0]:.3f} ± {r.aligned[1]:.3f}",
                "Δ": f"{r.delta:+.3f}",
                **{e: f"{v[0]:.3f} ± {v[1]:.3f}" for e, v in r.others.items()},
            }
            for r in rows
        ]
    )
    html = render_report(
        synthetic=synthetic,
        headline=headline(rows),
        results=table,
        skipped=skipped_tasks(records),
        figures=[
            ("Before / after alignment", chart),
            ("ROC curves", roc),
            ("Embedding map", emb),
        ],
        zero_shot=zero_shot,
        retrieval=retrieval,
        audit=audit,
        validation=validation,
        seeds=seeds,
    )
    return Outputs(
        metrics=metrics(records, zero_shot, retrieval, audit, synthetic),
        table=results_table(rows, synthetic),
        chart=chart,
        roc=roc,
        roc_curves=roc_curves(records),
        embedding_map=emb,
        html=html,
    )

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

from acula_pipeline.evaluation.comparison import (
    Difference,
    Overall,
    TaskComparison,
    compare,
    overall,
)
from acula_pipeline.evaluation.html import render_report
from acula_pipeline.evaluation.probes import ProbeCfg
from acula_pipeline.evaluation.report import (
    DISPLAY,
    before_after_chart,
    diff_cell,
    embedding_map,
    encoder_columns,
    results_table,
    roc_table,
    score_cell,
)
from acula_pipeline.evaluation.run import ALIGNED, BASELINE, ProbeRecord, split_seed
from acula_pipeline.evaluation.tasks import TaskSpec
from acula_pipeline.evaluation.uncertainty import ClusterBootstrap, Interval


def headline(overall: Overall | None) -> dict[str, Any] | None:
    """The mean AUROC over classification tasks as plain numbers (HTML, logs)."""
    if overall is None or BASELINE not in overall.scores:
        return None
    out: dict[str, Any] = {"tasks": overall.tasks}
    for enc, score in overall.scores.items():
        out[enc] = score.mean
    return out


def _ascii(d: Difference) -> str:
    return f"{d.a}_minus_{d.b}"


def _interval(ci: Interval | None) -> dict[str, float | int]:
    """The interval's bounds, and how many bootstrap draws had no value (a draw
    holding one class only), when any did."""
    if ci is None:
        return {}
    out: dict[str, float | int] = {}
    if not np.isnan(ci.low):
        out |= {"ci95_low": round(ci.low, 4), "ci95_high": round(ci.high, 4)}
    if ci.draws_undefined:
        out["draws_undefined"] = ci.draws_undefined
    return out


def _diffs(diffs: Sequence[Difference]) -> dict[str, Any]:
    return {
        _ascii(d): {
            "delta": round(d.ci.point, 4),
            **_interval(d.ci),
            "verdict": d.verdict,
        }
        for d in diffs
    }


def provenance(recordings: pd.DataFrame, params: Any) -> str:
    """One line saying which data and settings produced a table."""
    parts = []
    if len(recordings):
        by = recordings.groupby("dataset")["subject_id"].nunique().sort_index()
        synthetic = bool(recordings["is_synthetic"].fillna(False).all())
        kind = "SYNTHETIC" if synthetic else "real"
        parts.append(
            f"Data ({kind}): " + ", ".join(f"{d} ({n} subjects)" for d, n in by.items())
        )
    parts.append(
        "scored on the TEST split"
        if params.score_on == "test"
        else "scored on the VALIDATION split (model selection; the test split was "
        "not read)"
    )
    parts.append(f"probe seeds {list(params.probe.seeds)}")
    parts.append(
        "trained models: the pipeline's own"
        + (
            f" and retrained with seeds {list(params.train_seeds)} (each row averages "
            "them; its interval resamples them too)"
            if params.train_seeds
            else " (one training seed: the interval holds patient sampling only)"
        )
    )
    parts.append(f"{params.probe.bootstrap} bootstrap draws over patients")
    return "; ".join(parts) + "."


def run_settings(
    aligned: Mapping[str, Any] | None,
    baseline: Mapping[str, Any] | None,
    params: Any,
) -> dict[str, Any]:
    """The settings that produced a run's results, read from the models' own
    configs (what they were trained with, not what the parameters say now)."""
    a = dict((aligned or {}).get("params") or {})
    b = dict((baseline or {}).get("params") or {})
    teacher = (aligned or {}).get("teacher") or {}
    train = a.get("train") or {}
    student = (a.get("encoder") or {}).get("name")
    capped = (
        {"align_max_steps": train["max_steps"]}
        if train.get("max_steps") is not None
        else {}
    )
    return {
        "student": student,
        "teacher": teacher.get("path") or teacher.get("name"),
        "loss": a.get("loss"),
        "lambda_align": a.get("lambda_align"),
        "lambda_ssl": a.get("lambda_ssl"),
        "align_epochs": train.get("epochs"),
        **capped,
        "align_lr": train.get("lr"),
        # another student starts align itself: nothing was pretrained
        "pretrain_epochs": (b.get("train") or {}).get("epochs")
        if student in (None, "baseline")
        else "none (align starts from the student)",
        "score_on": params.score_on,
        "probe_seeds": list(params.probe.seeds),
        "train_seeds": list(params.train_seeds),
    }


def describe_settings(settings: Mapping[str, Any]) -> str:
    """The settings as one line for ``results.md`` and the HTML report."""
    return (
        "Settings: "
        + ", ".join(
            f"{k}={v}"
            for k, v in settings.items()
            if k not in ("score_on", "probe_seeds")
        )
        + "."
    )


# metrics.json's keys: short, so that `dvc metrics show` over every data root and
# `dvc exp show` stay narrow (a DVC metrics table has one column per number).
HEADLINE_KEYS = {"logmel_stats": "logmel"}


def headline_metrics(detail: Mapping[str, Any]) -> dict[str, float]:
    """``metrics.json``, the DVC metrics: the mean AUROC over tasks per encoder
    and the paired difference aligned − baseline with its patient-level 95 %
    interval (``delta``, ``delta_lo``, ``delta_hi``). Flat and numbers only, so
    ``dvc metrics show`` fits in 120 columns; ``results.json`` has each task."""
    head = detail.get("mean_auroc") or {}
    out: dict[str, float] = {}
    for enc in ("aligned", "baseline", "control", "logmel_stats"):
        if isinstance(head.get(enc), int | float):
            out[HEADLINE_KEYS.get(enc, enc)] = head[enc]
    diff = (head.get("differences") or {}).get("aligned_minus_baseline") or {}
    if isinstance(diff.get("delta"), int | float):
        out |= {
            "delta": diff["delta"],
            "delta_lo": diff["ci95_low"],
            "delta_hi": diff["ci95_high"],
        }
    return out


def compact_metrics(
    detail: Mapping[str, Any], settings: Mapping[str, Any]
) -> dict[str, Any]:
    """``results.json`` (in Git; ``git diff`` and ``acula package`` read it): per
    task and encoder the metric and its patient-level interval, the mean AUROC per
    encoder, and the settings that produced them. The rest is in
    ``metrics_detail.json``."""
    head = detail.get("mean_auroc") or {}
    mean = {
        k: v for k, v in head.items() if isinstance(v, int | float) and k != "tasks"
    }
    tasks = {}
    for key, encoders in (detail.get("summary") or {}).items():
        row = {}
        for enc, score in encoders.items():
            metric = next(
                k
                for k in score
                if k
                not in (
                    "ci95_low",
                    "ci95_high",
                    "draws_undefined",
                    "train_seeds",
                    "train_std",
                )
            )
            row[enc] = {
                metric: score[metric],
                "lo": score.get("ci95_low"),
                "hi": score.get("ci95_high"),
            }
        tasks[key] = row
    return {
        "synthetic": detail.get("synthetic"),
        "mean_auroc": {"tasks": head.get("tasks"), **mean} if head else None,
        "tasks": tasks,
        "leakage_audit_ok": detail.get("leakage_audit_ok"),
        "params": dict(settings),
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
    comparisons: Sequence[TaskComparison],
    overall: Overall | None,
    zero_shot: Sequence[Mapping[str, Any]],
    retrieval: Sequence[Mapping[str, Any]],
    audit: Mapping[str, Any],
    synthetic: bool,
) -> dict[str, Any]:
    """``metrics.json``: per task, dataset and encoder (with the patient-level
    interval), the paired differences with verdicts, and the headline."""
    intervals = {
        (c.task, c.dataset, e): s.ci for c in comparisons for e, s in c.scores.items()
    }
    subjects = {(c.task, c.dataset): c.n_subjects for c in comparisons}
    probes: dict[str, Any] = {}
    for r in records:
        if r.result is None:
            continue
        res = r.result
        key = (r.spec.name, r.data.dataset)
        entry = {
            res.metric: round(res.mean, 4),
            f"{res.metric}_std": round(res.std, 4),
            **_interval(intervals.get((*key, r.encoder))),
            "protocol": r.data.protocol,
            **({"opera_id": r.spec.opera_id} if r.spec.opera_id else {}),
            **({"split_file": r.data.split_source} if r.data.split_source else {}),
            "n": len(res.test_y) if res.test_y is not None else 0,
            "n_subjects": subjects.get(key, 0),
            # units without a label in the class map or without an embedding
            "left_out": int(r.data.counts.get("left_out", 0)),
        }
        if res.val_per_seed:
            entry[f"val_{res.metric}"] = round(float(np.mean(res.val_per_seed)), 4)
        probes.setdefault(r.spec.name, {}).setdefault(r.data.dataset, {})[r.encoder] = (
            entry
        )
    mean_auroc = None
    if overall is not None and ALIGNED in overall.scores and BASELINE in overall.scores:
        mean_auroc = {
            "tasks": overall.tasks,
            **{e: round(s.mean, 4) for e, s in overall.scores.items()},
            "delta": round(
                overall.scores[ALIGNED].mean - overall.scores[BASELINE].mean, 4
            ),
            "ci95": {e: _interval(s.ci) for e, s in overall.scores.items()},
            "differences": _diffs(overall.diffs),
        }
    return {
        "synthetic": synthetic,
        "mean_auroc": mean_auroc,
        "probes": probes,
        # every row of results.md: the mean over training seeds, its interval
        # (patients and seeds resampled) and the spread over training seeds
        "summary": {
            f"{c.task}/{c.dataset}": {
                e: {
                    c.metric: round(sc.mean, 4),
                    **_interval(sc.ci),
                    "train_seeds": sc.train_seeds,
                    **(
                        {"train_std": round(sc.train_std, 4)}
                        if sc.train_std is not None
                        else {}
                    ),
                }
                for e, sc in c.scores.items()
            }
            for c in comparisons
        },
        "differences": {
            f"{c.task}/{c.dataset}": _diffs(c.diffs) for c in comparisons if c.diffs
        },
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
        "scored_splits": sorted({c.scored for c in comparisons}),
    }


def roc_curves(records: Sequence[ProbeRecord]) -> dict[str, pd.DataFrame]:
    """``{task--dataset: fpr, baseline, aligned, …}`` for binary tasks (first seed)."""
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for r in records:
        res = r.result
        if res is None or r.spec.kind != "binary" or res.test_scores is None:
            continue
        if split_seed(r.encoder)[1]:  # the pipeline's own models only
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
        if (
            r.result is not None
            and r.spec.is_classification
            and not split_seed(r.encoder)[1]
        ):
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
    metrics: dict[str, Any]  # the headline, for DVC
    results: dict[str, Any]  # per task, with the settings
    metrics_detail: dict[str, Any]
    table: str
    chart: Figure
    roc: Figure
    roc_curves: dict[str, pd.DataFrame]
    embedding_map: Figure
    html: str
    comparisons: list[TaskComparison]
    overall: Overall | None


def build_outputs(
    records: Sequence[ProbeRecord],
    zero_shot: Sequence[Mapping[str, Any]],
    retrieval: Sequence[Mapping[str, Any]],
    audit: Mapping[str, Any],
    validation: Mapping[str, Any],
    probe: ProbeCfg,
    synthetic: bool,
    provenance: str = "",
    settings: Mapping[str, Any] | None = None,
) -> Outputs:
    comparisons = compare(records, ClusterBootstrap(draws=probe.bootstrap, seed=0))
    head = overall(comparisons)
    chart = before_after_chart(comparisons, synthetic)
    roc = roc_grid(records, synthetic)
    emb = map_figure(records, synthetic)
    encs = encoder_columns(comparisons)
    table = pd.DataFrame(
        [
            {
                "task": c.label or c.task,
                "dataset": c.dataset,
                "protocol": c.protocol,
                "units (subjects)": f"{c.n_units} ({c.n_subjects})",
                "metric": c.metric.upper(),
                **{DISPLAY.get(e, e): score_cell(c.scores.get(e)) for e in encs},
                **{d.name: f"{diff_cell(d)}: {d.verdict}" for d in c.diffs},
            }
            for c in comparisons
        ]
    )
    html = render_report(
        synthetic=synthetic,
        headline=headline(head),
        results=table,
        skipped=skipped_tasks(records),
        figures=[
            ("Every encoder per task (95 % interval over patients)", chart),
            ("ROC curves", roc),
            ("Embedding map", emb),
        ],
        zero_shot=zero_shot,
        retrieval=retrieval,
        audit=audit,
        validation=validation,
        seeds=probe.seeds,
        provenance=provenance,
        settings=describe_settings(settings) if settings else "",
    )
    detail = metrics(records, comparisons, head, zero_shot, retrieval, audit, synthetic)
    if settings:
        detail["params"] = dict(settings)
    return Outputs(
        metrics=headline_metrics(detail),
        results=compact_metrics(detail, settings or {}),
        metrics_detail=detail,
        table=results_table(
            comparisons,
            head,
            synthetic,
            provenance + (f"\n\n{describe_settings(settings)}" if settings else ""),
        ),
        chart=chart,
        roc=roc,
        roc_curves=roc_curves(records),
        embedding_map=emb,
        html=html,
        comparisons=comparisons,
        overall=head,
    )

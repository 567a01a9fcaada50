"""The reports stage's summary (DVC metrics) and its check pass-rate figure."""

from __future__ import annotations

import logging
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from acula_pipeline.reports.checks import CHECKS  # noqa: E402
from acula_pipeline.reports.generate import FALLBACK  # noqa: E402

log = logging.getLogger(__name__)


def corpus_makeup(
    reports: pd.DataFrame, rejects: pd.DataFrame
) -> dict[str, dict[str, Any]]:
    """Where each dataset's alignment reports came from, and the whole corpus's.

    Per dataset (and ``all``): ``units`` (reports kept + dropped),
    ``from_backend`` (the configured backend's text, passing the checks),
    ``fallback_template`` (the backend's text failed, the template's was used:
    ``reports.on_failure: fallback_template``), ``dropped`` (no report: failed
    checks with ``on_failure: drop``, a failed fallback, or no usable facts) and
    ``fallback_share`` (fallbacks over units).
    """

    def entry(r: pd.DataFrame, dropped: int) -> dict[str, Any]:
        fallback = int((r["source"] == FALLBACK).sum())
        units = len(r) + dropped
        return {
            "units": units,
            "from_backend": len(r) - fallback,
            "fallback_template": fallback,
            "dropped": dropped,
            "fallback_share": round(fallback / units, 4) if units else 0.0,
        }

    datasets = sorted({*map(str, reports["dataset"]), *map(str, rejects["dataset"])})
    out = {
        ds: entry(
            reports[reports["dataset"] == ds], int((rejects["dataset"] == ds).sum())
        )
        for ds in datasets
    }
    out["all"] = entry(reports, len(rejects))
    return out


def describe_makeup(makeup: dict[str, dict[str, Any]], backend: str) -> str:
    """One line per dataset, e.g. ``circor2022: 1081 units: 520 from openai, 561
    template fallback (52%), 0 dropped``."""
    return "; ".join(
        f"{ds}: {m['units']} units: {m['from_backend']} from {backend}, "
        f"{m['fallback_template']} template fallback "
        f"({m['fallback_share']:.0%}), {m['dropped']} dropped"
        for ds, m in makeup.items()
        if ds != "all"
    )


def summarise_reports(
    reports: pd.DataFrame,
    rejects: pd.DataFrame,
    run_stats: dict[str, Any],
    exclusions: dict[str, Any],
) -> dict[str, Any]:
    """Counts, sources, token use and check pass rates of one reports run.

    What changes on a warm rerun with nothing else changed (backend calls, cache
    hits, HTTP requests, retries, this run's tokens) is logged, not written: the
    summary is a DVC output, and a summary that changed every run would rerun
    every stage after it.
    """
    stats = dict(run_stats)
    volatile = {
        k: stats.pop(k)
        for k in list(stats)
        if k in ("backend_calls", "from_cache", "failed_not_kept")
        or k.startswith("backend_")
    }
    judge = stats.get("judge")
    if isinstance(judge, dict):
        judge = dict(judge)
        volatile |= {
            f"judge_{k}": judge.pop(k)
            for k in list(judge)
            if k in ("asked", "from_cache") or k.startswith("backend_")
        }
        stats["judge"] = judge
    if volatile:
        log.info(
            "Reports run (logged, not in reports_summary.json): %s",
            ", ".join(f"{k} {v}" for k, v in volatile.items()),
        )
    missing = stats.pop("without_backend_report", [])
    synthetic = bool(len(reports)) and bool(reports["is_synthetic"].fillna(False).all())
    return {
        "synthetic": synthetic,
        **{k: stats.pop(k) for k in ("backend", "model", "settings") if k in stats},
        "units": stats.pop("units", 0),
        "reports": len(reports),
        "by_source": {
            str(k): int(v) for k, v in reports["source"].value_counts().items()
        },
        "by_dataset": {
            str(k): int(v)
            for k, v in reports["dataset"].value_counts().sort_index().items()
        },
        "rejected": len(rejects),
        "rejected_by_stage": {
            str(k): int(v) for k, v in rejects["stage"].value_counts().items()
        },
        "without_backend_report": {"count": len(missing), "first": missing[:20]},
        "excluded_for_evaluation": exclusions,
        # the tokens the kept reports cost when written (stored with each report)
        "tokens": {
            c: int(pd.to_numeric(reports[c], errors="coerce").fillna(0).sum())
            for c in ("prompt_tokens", "completion_tokens")
            if c in reports
        },
        **stats,
    }


def plot_check_rates(summary: dict[str, Any]) -> Figure:
    """Heat map of check pass rates (backend output, before any fallback)."""
    by_ds = summary.get("pass_rate", {}).get("by_dataset", {})
    datasets = sorted(by_ds)
    seen = {c for d in datasets for c, v in by_ds[d].items() if v is not None}
    cols = [*CHECKS, *(["judge"] if "judge" in seen else []), "all"]
    grid = np.array(
        [
            [np.nan if (v := by_ds[d].get(c)) is None else v for c in cols]
            for d in datasets
        ],
        dtype=float,
    )
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.5 * max(len(datasets), 1)))
    if len(datasets):
        ax.imshow(grid, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        for i in range(len(datasets)):
            for j in range(len(cols)):
                ax.text(j, i, f"{grid[i, j]:.0%}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(cols)), [c.replace("_", "\n") for c in cols], fontsize=8)
    ax.set_yticks(range(len(datasets)), datasets, fontsize=8)
    tag = " (SYNTHETIC corpus)" if summary.get("synthetic") else ""
    ax.set_title(
        f"Report checks passed, backend {summary.get('backend')} "
        f"({summary.get('reports', 0)} reports){tag}",
        fontsize=10,
    )
    fig.tight_layout()
    return fig

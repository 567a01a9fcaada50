"""The reports stage's summary (DVC metrics) and its check pass-rate figure."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from acula_pipeline.reports.checks import CHECKS  # noqa: E402


def summarise_reports(
    reports: pd.DataFrame,
    rejects: pd.DataFrame,
    run_stats: dict[str, Any],
    exclusions: dict[str, Any],
) -> dict[str, Any]:
    """Counts, sources, token use and check pass rates of one reports run."""
    stats = dict(run_stats)
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
        **stats,
    }


def plot_check_rates(summary: dict[str, Any]) -> Figure:
    """Heat map of check pass rates (backend output, before any fallback)."""
    by_ds = summary.get("pass_rate", {}).get("by_dataset", {})
    datasets = sorted(by_ds)
    cols = [*CHECKS, "all"]
    grid = np.array([[by_ds[d].get(c, np.nan) for c in cols] for d in datasets])
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

"""The results in the paper's form: a Markdown table and the figures beside it.

Rows are ``ResultRow``s (one task on one dataset, baseline and aligned encoder);
the table ends with the mean over classification (AUROC) tasks, as the paper's
headline does, and says SYNTHETIC in its title when the data is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


@dataclass
class ResultRow:
    """One task on one dataset: mean ± std over probe seeds for each encoder."""

    task: str
    dataset: str
    metric: str  # "auroc" (higher is better) or "mae" (lower is better)
    baseline: tuple[float, float]
    aligned: tuple[float, float]
    protocol: str = "fixed"  # fixed split, or loso (leave one subject out)
    n_test: int = 0  # scored units (test split, or all under loso)
    others: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def delta(self) -> float:
        return self.aligned[0] - self.baseline[0]


def _fmt(v: tuple[float, float]) -> str:
    return f"{v[0]:.3f} ± {v[1]:.3f}"


def results_table(rows: Sequence[ResultRow], synthetic: bool) -> str:
    """Markdown: task, dataset, protocol, units scored, metric, baseline, aligned, Δ
    (and any extra encoder); then the mean over AUROC tasks, the paper's headline."""
    title = "Results" + (
        " (SYNTHETIC corpus: not a claim about real data)" if synthetic else ""
    )
    extra = sorted({k for r in rows for k in r.others})
    lines = [
        f"### {title}",
        "",
        "| task | dataset | protocol | n | metric | baseline | aligned | Δ |"
        + "".join(f" {e} |" for e in extra),
        "|---|---|---|---|---|---|---|---|" + "---|" * len(extra),
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.dataset} | {r.protocol} | {r.n_test} | "
            f"{r.metric.upper()} | {_fmt(r.baseline)} | {_fmt(r.aligned)} | "
            f"{r.delta:+.3f} |"
            + "".join(
                f" {_fmt(r.others[e]) if e in r.others else '-'} |" for e in extra
            )
        )
    cls = [r for r in rows if r.metric == "auroc"]
    if cls:
        b = float(np.mean([r.baseline[0] for r in cls]))
        a = float(np.mean([r.aligned[0] for r in cls]))
        means = "".join(
            f" {np.mean([r.others[e][0] for r in cls if e in r.others]):.3f} |"
            if any(e in r.others for r in cls)
            else " - |"
            for e in extra
        )
        lines.append(
            f"| **mean over {len(cls)} classification task(s)** | | | | AUROC | "
            f"**{b:.3f}** | **{a:.3f}** | **{a - b:+.3f}** |" + means
        )
    lines.append("")
    lines.append(
        "Mean ± std of the test metric over the probe seeds; Δ = aligned − baseline "
        "(for MAE, lower is better). Protocol `loso`: leave one subject out."
    )
    return "\n".join(lines) + "\n"


def before_after_chart(rows: Sequence[ResultRow], synthetic: bool) -> Figure:
    """Grouped bars of baseline and aligned AUROC per classification task."""
    cls = [r for r in rows if r.metric == "auroc"]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cls) + 2), 4))
    x = np.arange(len(cls))
    for off, name, attr in (
        (-0.2, "baseline", "baseline"),
        (0.2, "aligned", "aligned"),
    ):
        vals = [getattr(r, attr) for r in cls]
        ax.bar(
            x + off, [v[0] for v in vals], 0.4, yerr=[v[1] for v in vals], label=name
        )
    ax.set_xticks(x, [f"{r.task}\n{r.dataset}" for r in cls], fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test AUROC (mean ± std over seeds)")
    ax.set_title(
        "Linear probes before and after alignment"
        + (" — SYNTHETIC" if synthetic else "")
    )
    ax.legend()
    fig.tight_layout()
    return fig


def roc_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str
) -> Figure:
    """ROC curves of binary tasks: ``{label: (y, positive-class scores)}``."""
    fig, ax = plt.subplots(figsize=(5, 5))
    for label, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def embedding_map(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], Sequence[str]]],
    synthetic: bool,
) -> Figure:
    """PCA to two dimensions of the same units' embeddings under each encoder, one
    row per ``(title, {encoder: embeddings}, labels)`` panel, coloured by label."""
    n_cols = max((len(p[1]) for p in panels), default=1)
    fig, axes = plt.subplots(
        max(len(panels), 1),
        n_cols,
        figsize=(4.5 * n_cols, 4 * max(len(panels), 1)),
        squeeze=False,
    )
    for row, (title, by_encoder, labels) in enumerate(panels):
        names = np.asarray(labels)
        for col, (enc, emb) in enumerate(by_encoder.items()):
            ax = axes[row, col]
            xy = PCA(n_components=2, random_state=0).fit_transform(np.asarray(emb))
            for lab in sorted(set(names.tolist())):
                m = names == lab
                ax.scatter(xy[m, 0], xy[m, 1], s=8, label=str(lab))
            ax.set_title(f"{title}: {enc}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, len(by_encoder) - 1].legend(fontsize=7, markerscale=2)
    fig.suptitle(
        "Embeddings (PCA), coloured by label" + (" — SYNTHETIC" if synthetic else "")
    )
    fig.tight_layout()
    return fig


def roc_table(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """ROC curves of several encoders on a common false-positive-rate grid (0 … 1,
    step 0.01): one column per encoder, for ``dvc plots``."""
    grid = np.linspace(0, 1, 101)
    out = {"fpr": grid}
    for name, (y, s) in curves.items():
        fpr, tpr, _ = roc_curve(y, s)
        out[name] = np.interp(grid, fpr, tpr)
    return pd.DataFrame(out).round(4)

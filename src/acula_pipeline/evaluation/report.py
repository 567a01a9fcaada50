"""The results in the paper's form: a Markdown table and the figures beside it.

Rows are ``ResultRow``s (one task on one dataset, baseline and aligned encoder);
the table ends with the mean over classification (AUROC) tasks, as the paper's
headline does, and says SYNTHETIC in its title when the data is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
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

    @property
    def delta(self) -> float:
        return self.aligned[0] - self.baseline[0]


def _fmt(v: tuple[float, float]) -> str:
    return f"{v[0]:.3f} ± {v[1]:.3f}"


def results_table(rows: Sequence[ResultRow], synthetic: bool) -> str:
    """Markdown: task, dataset, metric, baseline, aligned, Δ; then the AUROC mean."""
    title = "Results" + (
        " (SYNTHETIC corpus: not a claim about real data)" if synthetic else ""
    )
    lines = [
        f"### {title}",
        "",
        "| task | dataset | metric | baseline | aligned | Δ |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.task} | {r.dataset} | {r.metric.upper()} | {_fmt(r.baseline)} | "
            f"{_fmt(r.aligned)} | {r.delta:+.3f} |"
        )
    cls = [r for r in rows if r.metric == "auroc"]
    if cls:
        b = float(np.mean([r.baseline[0] for r in cls]))
        a = float(np.mean([r.aligned[0] for r in cls]))
        lines.append(
            f"| **mean over {len(cls)} classification task(s)** | | AUROC | "
            f"**{b:.3f}** | **{a:.3f}** | **{a - b:+.3f}** |"
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
    before: np.ndarray, after: np.ndarray, labels: Sequence[str], title: str
) -> Figure:
    """PCA to two dimensions of the same clips' embeddings before and after
    alignment, coloured by label."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    names = np.asarray(labels)
    for ax, emb, name in ((axes[0], before, "baseline"), (axes[1], after, "aligned")):
        xy = PCA(n_components=2, random_state=0).fit_transform(np.asarray(emb))
        for lab in sorted(set(names.tolist())):
            m = names == lab
            ax.scatter(xy[m, 0], xy[m, 1], s=8, label=str(lab))
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].legend(fontsize=8, markerscale=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

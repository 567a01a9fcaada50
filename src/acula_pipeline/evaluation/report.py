"""The results in the paper's form: a Markdown table and the figures beside it.

Rows are ``TaskComparison``s (one task on one dataset, every encoder with its
patient-level interval); the table ends with the mean over classification (AUROC)
tasks, as the paper's headline does, then lists the paired differences with their
verdicts, and says SYNTHETIC in its title when the data is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

from acula_pipeline.evaluation.comparison import (  # noqa: E402
    DIFFERENCES,
    Difference,
    Overall,
    Score,
    TaskComparison,
)

# Column order and display names of the encoders every table shows first.
ENCODER_ORDER = ("logmel_stats", "baseline", "control", "aligned")
DISPLAY = {
    "logmel_stats": "no learning (log-mel stats)",
    "baseline": "baseline (SSL)",
    "control": "SSL-only control",
    "aligned": "aligned",
}


def encoder_columns(comparisons: Sequence[TaskComparison]) -> list[str]:
    """The encoders of the comparisons: the standard rows first, then the extras."""
    seen = {e for c in comparisons for e in c.scores}
    return [e for e in ENCODER_ORDER if e in seen] + sorted(seen - set(ENCODER_ORDER))


def score_cell(score: Score | None, digits: int = 3) -> str:
    """``0.731 [0.652, 0.803]``: mean over probe seeds, patient-level interval."""
    if score is None:
        return "-"
    seeds = (
        f" (sd {score.train_std:.{digits}f} over {score.train_seeds} seeds)"
        if score.train_std is not None
        else ""
    )
    if score.ci is None or np.isnan(score.ci.low):
        return f"{score.mean:.{digits}f} ± {score.std:.{digits}f}{seeds}"
    return (
        f"{score.mean:.{digits}f} [{score.ci.low:.{digits}f}, "
        f"{score.ci.high:.{digits}f}]{seeds}"
    )


def diff_cell(d: Difference, digits: int = 3) -> str:
    ci = d.ci
    if np.isnan(ci.low):
        return f"{ci.point:+.{digits}f} (no interval)"
    return f"{ci.point:+.{digits}f} [{ci.low:+.{digits}f}, {ci.high:+.{digits}f}]"


def results_table(
    comparisons: Sequence[TaskComparison],
    headline: Overall | None,
    synthetic: bool,
    provenance: str = "",
) -> str:
    """Markdown: every encoder's score per task with its patient-level interval and
    the mean over AUROC tasks (the paper's headline); then the paired differences
    with their verdicts."""
    scored = sorted({c.scored for c in comparisons})
    title = (
        "Results"
        + (
            " on the VALIDATION split (for choosing settings)"
            if "val" in scored
            else ""
        )
        + (" (SYNTHETIC corpus: not a claim about real data)" if synthetic else "")
    )
    encs = encoder_columns(comparisons)
    lines = [f"### {title}", ""]
    if provenance:
        lines += [provenance, ""]
    lines += [
        "| task | dataset | protocol | units (subjects) | metric | "
        + " | ".join(DISPLAY.get(e, e) for e in encs)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(encs),
    ]
    for c in comparisons:
        lines.append(
            f"| {c.label or c.task} | {c.dataset} | {c.protocol} "
            f"| {c.n_units} ({c.n_subjects}) "
            f"| {c.metric.upper()} | "
            + " | ".join(score_cell(c.scores.get(e)) for e in encs)
            + " |"
        )
    if headline is not None:
        lines.append(
            f"| **mean over {headline.tasks} classification task(s)** | | | | AUROC | "
            + " | ".join(
                f"**{score_cell(headline.scores[e])}**" if e in headline.scores else "-"
                for e in encs
            )
            + " |"
        )
    lines += [
        "",
        "Each cell: the mean over probe seeds (and over training seeds, when "
        "`evaluate.train_seeds` retrained the models) [95 % interval from a bootstrap "
        "over patients, which resamples subjects, not recordings, and the training "
        "seeds too] (the spread over training seeds). Protocol `loso`: leave one "
        "subject out.",
        "",
    ]
    named = [(a, b) for a, b in DIFFERENCES]
    present = [
        (a, b)
        for a, b in named
        if any(d.a == a and d.b == b for c in comparisons for d in c.diffs)
    ]
    if present:
        lines += [
            "#### Paired differences (on the same patients) and verdicts",
            "",
            "| task | dataset | "
            + " | ".join(
                f"{DISPLAY.get(a, a)} − {DISPLAY.get(b, b)}" for a, b in present
            )
            + " |",
            "|---|---|" + "---|" * len(present),
        ]
        rows = [(c.label or c.task, c.dataset, c.diffs) for c in comparisons]
        if headline is not None:
            rows.append(
                (f"**mean over {headline.tasks} AUROC task(s)**", "", headline.diffs)
            )
        for task, dataset, diffs in rows:
            by = {(d.a, d.b): d for d in diffs}
            cells = [
                f"{diff_cell(by[k])}: **{by[k].verdict}**" if k in by else "-"
                for k in present
            ]
            lines.append(f"| {task} | {dataset} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "A verdict is read from the interval of the difference, never from its "
            "point: *helped* when the whole interval is on the better side of zero "
            "(above for AUROC, below for MAE), *hurt* when on the worse side, else "
            "*no evidence either way*.",
            "",
        ]
    return "\n".join(lines) + "\n"


def before_after_chart(
    comparisons: Sequence[TaskComparison], synthetic: bool
) -> Figure:
    """Grouped bars of every encoder's AUROC per classification task, with the
    patient-level interval as the error bar."""
    cls = [c for c in comparisons if c.metric == "auroc"]
    encs = encoder_columns(cls)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(cls) + 2), 4))
    x = np.arange(len(cls))
    width = 0.8 / max(len(encs), 1)
    for i, e in enumerate(encs):
        means: list[float] = []
        err: list[list[float]] = [[], []]
        for c in cls:
            s = c.scores.get(e)
            means.append(s.mean if s else np.nan)
            lo = s.ci.low if s and s.ci and not np.isnan(s.ci.low) else np.nan
            hi = s.ci.high if s and s.ci and not np.isnan(s.ci.high) else np.nan
            err[0].append(max(s.mean - lo, 0) if s and not np.isnan(lo) else 0)
            err[1].append(max(hi - s.mean, 0) if s and not np.isnan(hi) else 0)
        ax.bar(
            x + (i - (len(encs) - 1) / 2) * width,
            means,
            width,
            yerr=err,
            capsize=2,
            label=DISPLAY.get(e, e),
        )
    ax.set_xticks(x, [f"{c.label or c.task}\n{c.dataset}" for c in cls], fontsize=8)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test AUROC (95 % interval over patients)")
    ax.set_title(
        "Linear probes: reference, baseline, control, aligned"
        + (" — SYNTHETIC" if synthetic else "")
    )
    ax.legend(fontsize=7)
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

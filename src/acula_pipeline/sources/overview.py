"""A one-page figure of what ingestion produced: counts, durations, rates, quarantine."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def ingest_overview(
    recordings: pd.DataFrame, quarantine: pd.DataFrame, segments: pd.DataFrame
) -> Figure:
    """Plot recordings accepted and quarantined, durations, native rates and clip units.

    Args:
        recordings: Accepted recordings.
        quarantine: Rejected inputs with reasons.
        segments: The clip index.

    Returns:
        A matplotlib figure (the title says when the data is synthetic).
    """
    datasets = sorted(set(recordings["dataset"]) | set(quarantine["dataset"]))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    accepted = recordings["dataset"].value_counts().reindex(datasets, fill_value=0)
    rejected = quarantine["dataset"].value_counts().reindex(datasets, fill_value=0)
    ax = axes[0, 0]
    ax.barh(datasets, accepted, label="accepted")
    ax.barh(datasets, rejected, left=accepted, label="quarantined", color="tab:red")
    ax.set_title("Recordings per dataset")
    ax.legend()
    ax = axes[0, 1]
    ax.boxplot(
        [recordings.loc[recordings["dataset"] == d, "duration_s"] for d in datasets],
        orientation="horizontal",
        tick_labels=datasets,
    )
    ax.set_title("Duration (s) of accepted recordings")
    ax = axes[1, 0]
    rates = pd.crosstab(recordings["dataset"], recordings["sample_rate"])
    rates.plot.barh(stacked=True, ax=ax)
    ax.set_title("Native sample rate (Hz)")
    ax = axes[1, 1]
    units = pd.crosstab(segments["dataset"], segments["unit"])
    units.plot.barh(stacked=True, ax=ax)
    ax.set_title("Encoder clips per dataset")
    synthetic = bool(len(recordings)) and bool(recordings["is_synthetic"].all())
    fig.suptitle(
        f"Ingest: {len(recordings)} recordings, {len(segments)} clips, "
        f"{len(quarantine)} quarantined" + (" — SYNTHETIC DATA" if synthetic else "")
    )
    fig.tight_layout()
    return fig

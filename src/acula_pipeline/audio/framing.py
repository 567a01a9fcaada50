"""The clip index: annotated cycles or fixed windows per recording, with a subject split."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

SEGMENT_COLUMNS = (
    "segment_id",
    "recording_id",
    "subject_id",
    "dataset",
    "unit",
    "start_s",
    "end_s",
    "split",
    "crackles",
    "wheezes",
)


class ClipPolicy(BaseModel):
    """How recordings are cut into encoder clips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_seconds: float = Field(8.19, gt=0)  # encoder input length
    overlap: float = Field(
        0.5, ge=0, lt=1
    )  # window overlap for un-annotated recordings
    min_tail_seconds: float = Field(
        2.0, ge=0
    )  # a last partial window shorter is dropped
    pad_mode: str = "repeat"  # how short clips are filled: repeat or zeros

    @model_validator(mode="after")
    def _check_pad(self) -> ClipPolicy:
        if self.pad_mode not in ("repeat", "zeros"):
            raise ValueError(
                f"pad_mode must be 'repeat' or 'zeros', got {self.pad_mode!r}"
            )
        return self


def window_starts(duration_s: float, policy: ClipPolicy) -> list[float]:
    """Start times of fixed windows covering a recording."""
    hop = policy.clip_seconds * (1 - policy.overlap)
    if duration_s <= policy.clip_seconds:
        return [0.0]
    starts = list(np.arange(0.0, duration_s - policy.clip_seconds + 1e-9, hop))
    # Audio after the last full window gets one more (padded) window if long enough.
    tail = duration_s - (starts[-1] + policy.clip_seconds)
    if tail >= policy.min_tail_seconds:
        starts.append(starts[-1] + hop)
    return [round(float(s), 6) for s in starts]


def make_segments(
    recordings: pd.DataFrame,
    cycles: pd.DataFrame,
    clip: ClipPolicy,
    split_of: Mapping[str, str],
) -> pd.DataFrame:
    """Build the clip index: annotated cycles where a recording has them, windows
    elsewhere; each clip carries its subject's split (``split_of``: subject → split,
    see ``acula_pipeline.evaluation.splits``)."""
    splits = dict(
        zip(
            recordings["recording_id"],
            recordings["subject_id"].map(split_of),
            strict=True,
        )
    )
    rows = []
    annotated = cycles[cycles["recording_id"].isin(splits)] if len(cycles) else cycles
    for c in annotated.itertuples(index=False):
        rows.append(
            (
                f"{c.recording_id}#c{c.cycle_index:03d}",
                c.recording_id,
                "cycle",
                c.start_s,
                c.end_s,
                c.crackles,
                c.wheezes,
            )
        )
    has_cycles = set(annotated["recording_id"]) if len(annotated) else set()
    for r in recordings.itertuples(index=False):
        if r.recording_id in has_cycles:
            continue
        for k, s in enumerate(window_starts(r.duration_s, clip)):
            rows.append(
                (
                    f"{r.recording_id}#w{k:03d}",
                    r.recording_id,
                    "window",
                    s,
                    min(s + clip.clip_seconds, r.duration_s),
                    None,
                    None,
                )
            )
    seg = pd.DataFrame(
        rows,
        columns=[
            "segment_id",
            "recording_id",
            "unit",
            "start_s",
            "end_s",
            "crackles",
            "wheezes",
        ],
    )
    meta = recordings.set_index("recording_id")[["subject_id", "dataset"]]
    seg = seg.join(meta, on="recording_id")
    seg["split"] = seg["recording_id"].map(splits)
    seg = seg.sort_values(["recording_id", "start_s"], kind="stable").reset_index(
        drop=True
    )
    return seg[list(SEGMENT_COLUMNS)]

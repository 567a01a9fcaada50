"""The clip index: annotated cycles or fixed windows per recording, with a subject split."""

from __future__ import annotations

import hashlib

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


class SplitPolicy(BaseModel):
    """Subject-disjoint split used until the evaluate stage writes its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.2, ge=0, lt=1)


def _unit_interval(seed: int, subject_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def subject_split(recordings: pd.DataFrame, policy: SplitPolicy) -> pd.Series:
    """Assign train/val/test per subject: official test split where a dataset has one.

    Returns:
        A series aligned with ``recordings``.
    """

    def one(subject: str, official: object) -> str:
        u = _unit_interval(policy.seed, subject)
        if official == "test":
            return "test"
        if official == "train":
            return "val" if u < policy.val_fraction else "train"
        if u < policy.test_fraction:
            return "test"
        return "val" if u < policy.test_fraction + policy.val_fraction else "train"

    official = recordings.get("official_split", pd.Series([None] * len(recordings)))
    # A subject is in one split only, even if its recordings disagree about the official one.
    per_subject: dict[str, str] = {}
    for subject, off in zip(recordings["subject_id"], official, strict=True):
        if per_subject.get(subject) != "test":
            per_subject[subject] = one(subject, off)
    return recordings["subject_id"].map(per_subject)


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
    recordings: pd.DataFrame, cycles: pd.DataFrame, clip: ClipPolicy, split: SplitPolicy
) -> pd.DataFrame:
    """Build the clip index: annotated cycles where a recording has them, windows elsewhere."""
    splits = dict(
        zip(recordings["recording_id"], subject_split(recordings, split), strict=True)
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

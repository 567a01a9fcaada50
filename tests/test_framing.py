"""Segments: windows, cycles, and a subject-disjoint split."""

from __future__ import annotations

import pandas as pd
import pytest

from acula_pipeline.audio.framing import ClipPolicy, make_segments, window_starts
from acula_pipeline.evaluation.splits import SplitParams, split_of_subjects


def test_window_starts():
    p = ClipPolicy(clip_seconds=8.0, overlap=0.5, min_tail_seconds=2.0)
    assert window_starts(5.0, p) == [0.0]
    assert window_starts(16.0, p) == [0.0, 4.0, 8.0]
    assert window_starts(17.0, p) == [0.0, 4.0, 8.0]
    assert window_starts(19.0, p) == [0.0, 4.0, 8.0, 12.0]


def test_bad_pad_mode():
    with pytest.raises(ValueError, match="pad_mode"):
        ClipPolicy(pad_mode="mirror")


def recordings():
    return pd.DataFrame(
        {
            "recording_id": [f"r{i}" for i in range(40)] + ["a", "b"],
            "subject_id": [f"s{i // 2}" for i in range(40)] + ["t", "t"],
            "dataset": "d",
            "duration_s": 20.0,
            "official_split": [None] * 40 + ["train", "test"],
        }
    )


def test_split_is_subject_disjoint_and_respects_official_test():
    rec = recordings()
    split = rec["subject_id"].map(split_of_subjects(rec, SplitParams(seed=1)))
    per_subject = split.groupby(rec["subject_id"]).nunique()
    assert (per_subject == 1).all()
    assert split[rec["subject_id"] == "t"].eq("test").all()
    assert set(split) == {"train", "val", "test"}


def test_make_segments_uses_cycles_where_annotated():
    rec = recordings()
    cycles = pd.DataFrame(
        {
            "recording_id": ["a", "a"],
            "cycle_index": [0, 1],
            "start_s": [0.0, 2.5],
            "end_s": [2.5, 5.0],
            "crackles": [True, False],
            "wheezes": [False, False],
        }
    )
    seg = make_segments(
        rec, cycles, ClipPolicy(), split_of_subjects(rec, SplitParams())
    )
    a = seg[seg["recording_id"] == "a"]
    assert a["unit"].tolist() == ["cycle", "cycle"] and a["crackles"].tolist() == [
        True,
        False,
    ]
    b = seg[seg["recording_id"] == "b"]
    assert b["unit"].eq("window").all() and len(b) == len(
        window_starts(20.0, ClipPolicy())
    )
    assert seg["segment_id"].is_unique
    assert seg["split"].notna().all()

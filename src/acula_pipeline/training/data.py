"""Training examples: log-mel clips from the feature store, with teacher targets."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from acula_pipeline.audio.features import FeatureStore


class ClipDataset(Dataset[tuple[torch.Tensor, ...]]):
    """(clip,) or (clip, target) for the given segments, read from memory maps."""

    def __init__(
        self,
        store: FeatureStore,
        segment_ids: Sequence[str],
        targets: np.ndarray | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(segment_ids):
            raise ValueError(f"{len(segment_ids)} segments but {len(targets)} targets")
        self.store, self.ids = store, list(segment_ids)
        self.targets = (
            None
            if targets is None
            else torch.from_numpy(np.asarray(targets, np.float32))
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        x = torch.from_numpy(np.asarray(self.store.get(self.ids[i]), dtype=np.float32))
        return (x,) if self.targets is None else (x, self.targets[i])


def trainable_segments(
    segments: pd.DataFrame, exclude_splits: Sequence[str]
) -> list[str]:
    """Segment ids outside the held-out splits, sorted."""
    keep = ~segments["split"].isin(list(exclude_splits))
    return sorted(segments.loc[keep, "segment_id"])


def alignment_pairs(segments: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    """Each clip with the report of its unit (its cycle, else its recording).

    Clips whose unit has no report (held-out subjects, dropped reports) are left out.
    """
    unit = np.where(
        segments["unit"] == "cycle", segments["segment_id"], segments["recording_id"]
    )
    pairs = pd.DataFrame({"segment_id": segments["segment_id"], "unit_id": unit})
    pairs = pairs.merge(reports[["unit_id", "report"]], on="unit_id", how="inner")
    return pairs.sort_values("segment_id", ignore_index=True)


def fingerprint(*parts: object) -> str:
    """Hash of what a training run learns from (a new corpus → a fresh start)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()[:16]


def code_fingerprint() -> str:
    """Hash of the model and training sources: a checkpoint made by other code is
    not resumed (it would hand back weights the current code did not train)."""
    import acula_pipeline.models as models_pkg
    import acula_pipeline.training as training_pkg

    h = hashlib.sha256()
    for pkg in (models_pkg, training_pkg):
        for f in sorted(Path(str(pkg.__file__)).parent.glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]

"""Training examples: log-mel clips from the feature store, with teacher targets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models.base import to_float_tensor


class ClipDataset(Dataset[tuple[Any, ...]]):
    """(clip,) or (clip, target) for the given segments, read from memory maps.

    ``waveforms`` reads the 16 kHz clips ingest kept instead of the log-mel
    features; ``transform`` turns one stored clip into model input (an encoder's
    ``preprocessor``).
    """

    def __init__(
        self,
        store: FeatureStore,
        segment_ids: Sequence[str],
        targets: np.ndarray | None = None,
        transform: Callable[[np.ndarray], Any] = to_float_tensor,
        waveforms: bool = False,
    ) -> None:
        if targets is not None and len(targets) != len(segment_ids):
            raise ValueError(f"{len(segment_ids)} segments but {len(targets)} targets")
        if waveforms and not store.has_waveforms:
            raise ValueError(
                f"{store.root}: this encoder reads waveforms, but the feature store "
                "holds log-mel features only; set ingest.features.keep_waveforms: "
                "true and rerun ingest"
            )
        self.store, self.ids = store, list(segment_ids)
        self.transform, self.waveforms = transform, waveforms
        self.targets = (
            None
            if targets is None
            else torch.from_numpy(np.asarray(targets, np.float32))
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        x = self.transform(self.store.get(self.ids[i], waveforms=self.waveforms))
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

"""Frozen-encoder embeddings: batched, no-grad, per clip, then pooled per unit.

Long recordings were already framed by ingest the OPERA-GT way (8.19 s windows with
50 % overlap); a recording's embedding is the mean of its windows' embeddings, a
cycle's is its own clip's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.models import AudioEncoder
from acula_pipeline.runtime import resolve_device
from acula_pipeline.training.data import ClipDataset
from acula_pipeline.training.engine import autocast, move


@torch.no_grad()
def embed_segments(
    encoder: AudioEncoder,
    store: FeatureStore,
    segment_ids: Sequence[str],
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
) -> np.ndarray:
    """``(len(segment_ids), embed_dim)`` float32 embeddings, in the given order."""
    device = resolve_device(device)
    was_training = encoder.training
    encoder.eval().to(device)
    data = ClipDataset(
        store,
        segment_ids,
        transform=encoder.preprocessor(int(store.meta["frontend"]["sample_rate"])),
        waveforms=encoder.input_kind == "waveform",
    )
    out = []
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
    for (x,) in tqdm(loader, desc="embed", unit="batch", disable=not progress):
        with autocast(device):
            out.append(encoder.encode_audio(move(x, device)).float().cpu().numpy())
    encoder.train(was_training)
    if not out:
        return np.zeros((0, encoder.embed_dim), np.float32)
    return np.concatenate(out).astype(np.float32)


def pool_by(
    keys: Sequence[str], embeddings: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Mean embedding per key (a recording's windows, a subject's recordings),
    keys sorted."""
    frame = pd.DataFrame(np.asarray(embeddings))
    frame["key"] = list(keys)
    means = frame.groupby("key", sort=True).mean()
    return means.index.tolist(), means.to_numpy(dtype=np.float32)

"""Thin nodes over ``acula_pipeline.training``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.runtime import without_timings
from acula_pipeline.training.stages import PretrainParams, pretrain
from acula_pipeline.validation.runner import require_success


def pretrain_encoder(
    store: FeatureStore,
    segments: pd.DataFrame,
    validation: dict[str, Any],
    checkpoints: str,
    tracking: str,
    params: PretrainParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Masked-reconstruction training on the non-held-out clips."""
    from acula_pipeline.hub import with_preprocessor  # transformers: load lazily

    require_success(validation)
    artifact, curve = pretrain(store, segments, params, checkpoints, tracking)
    return with_preprocessor(artifact, store), without_timings(curve, "pretrain")

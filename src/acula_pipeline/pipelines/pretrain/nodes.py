"""Thin nodes over ``acula_pipeline.training``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.training.stages import PretrainParams, pretrain


def pretrain_encoder(
    store: FeatureStore,
    segments: pd.DataFrame,
    validation: dict[str, Any],
    checkpoints: str,
    params: PretrainParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Masked-reconstruction training on the non-held-out clips."""
    _require_valid(validation)
    return pretrain(store, segments, params, checkpoints)


def _require_valid(validation: dict[str, Any]) -> None:
    if not validation.get("success"):
        raise RuntimeError(
            "the validate stage reported critical failures "
            "(data/08_reporting/validation_summary.json); fix the data before training"
        )

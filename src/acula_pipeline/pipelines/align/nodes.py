"""Thin nodes over ``acula_pipeline.training``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.runtime import without_timings
from acula_pipeline.training.stages import (
    AlignParams,
    align,
    embed_reports,
    ssl_control,
)
from acula_pipeline.validation.runner import require_success


def embed_report_texts(
    reports: pd.DataFrame, cache_dir: str, params: AlignParams
) -> dict[str, Any]:
    """Teacher embeddings of the reports (cached on disk by teacher and text)."""
    return embed_reports(reports, params, cache_dir)


def align_encoder(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: dict[str, Any],
    validation: dict[str, Any],
    checkpoints: str,
    tracking: str,
    params: AlignParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Joint alignment + SSL training from the baseline encoder."""
    from acula_pipeline.hub import with_preprocessor  # transformers: load lazily

    require_success(validation)
    artifact, curve = align(
        store, segments, reports, embeddings, baseline, params, checkpoints, tracking
    )
    return with_preprocessor(artifact, store), without_timings(curve, "align")


def train_ssl_control(
    store: FeatureStore,
    segments: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: dict[str, Any],
    validation: dict[str, Any],
    checkpoints: str,
    tracking: str,
    params: AlignParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The SSL-only control: the align run with lambda_align 0."""
    from acula_pipeline.hub import with_preprocessor  # transformers: load lazily

    require_success(validation)
    artifact, curve = ssl_control(
        store, segments, reports, embeddings, baseline, params, checkpoints, tracking
    )
    return with_preprocessor(artifact, store), without_timings(
        curve, "SSL-only control"
    )

"""Thin nodes over ``acula_pipeline.training``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.runtime import without_timings
from acula_pipeline.training.stages import (
    AlignParams,
    PretrainParams,
    pretrain,
    start_artifact,
    uses_own_baseline,
)
from acula_pipeline.validation.runner import require_success

log = logging.getLogger(__name__)


def pretrain_encoder(
    store: FeatureStore,
    segments: pd.DataFrame,
    validation: dict[str, Any],
    checkpoints: str,
    tracking: str,
    params: PretrainParams,
    align: AlignParams,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Masked-reconstruction training on the non-held-out clips; skipped when
    ``align`` starts from another student (an OPERA checkpoint, …), whose start
    is then the baseline."""
    from acula_pipeline.hub import with_preprocessor  # transformers: load lazily
    from acula_pipeline.tracking import write_curve
    from acula_pipeline.training.distributed import is_main_process

    require_success(validation)
    if not uses_own_baseline(align):
        log.info(
            "Pretraining skipped: align starts from encoder %r%s, which is the "
            "baseline its results are compared with",
            align.encoder.name,
            f" ({align.encoder.path})" if align.encoder.path else "",
        )
        if is_main_process():  # one writer under torchrun
            write_curve(tracking, [])
        artifact = start_artifact(align.encoder, store, align.train.seed)
        return with_preprocessor(artifact, store), pd.DataFrame(
            columns=["step", "epoch", "lr", "loss", "ssl"]
        )
    artifact, curve = pretrain(store, segments, params, checkpoints, tracking)
    return with_preprocessor(artifact, store), without_timings(curve, "pretrain")

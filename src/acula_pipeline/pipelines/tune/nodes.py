"""Thin nodes over ``acula_pipeline.tuning``."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.evaluation.run import EvaluateParams
from acula_pipeline.training.stages import AlignParams
from acula_pipeline.tuning import outputs
from acula_pipeline.tuning.study import TuneParams, open_storage, storage_label, tune
from acula_pipeline.validation.runner import require_success


def run_study(
    store: FeatureStore,
    recordings: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    embeddings: dict[str, Any],
    baseline: dict[str, Any],
    validation: dict[str, Any],
    folder: str,
    params: TuneParams,
    align: AlignParams,
    evaluate: EvaluateParams,
) -> dict[str, Any]:
    """This worker's share of the study (trials until it holds ``n_trials``)."""
    require_success(validation)
    study = tune(
        store,
        recordings,
        segments,
        splits,
        reports,
        embeddings,
        baseline,
        params,
        align,
        evaluate.tasks,
        evaluate.loso_below_subjects,
        folder,
        evaluate.embed.batch_size,
    )
    return {
        "study_name": study.study_name,
        "folder": folder,
        "is_synthetic": bool(store.meta.get("is_synthetic")),
    }


def study_outputs(
    ran: dict[str, Any], params: TuneParams
) -> tuple[dict[str, Any], pd.DataFrame, Figure, Figure, Figure, Figure]:
    """best_params.json, the trials table and the four figures, from the storage
    (so they cover every worker's trials)."""
    import optuna

    storage = open_storage(params.storage, ran["folder"], params.heartbeat_s)
    study = optuna.load_study(study_name=ran["study_name"], storage=storage)
    label = storage_label(params.storage, ran["folder"])
    best = outputs.best_params(study, label, params.n_trials, ran["is_synthetic"])
    figs = outputs.figures(study, ran["is_synthetic"], params.sampler.seed)
    return (
        best,
        outputs.trials_table(study),
        figs["history"],
        figs["importances"],
        figs["parallel"],
        figs["intermediate"],
    )

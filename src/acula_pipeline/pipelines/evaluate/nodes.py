"""Thin nodes over ``acula_pipeline.evaluation``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.evaluation.outputs import build_outputs, provenance, run_settings
from acula_pipeline.evaluation.run import (
    Embeddings,
    EvaluateParams,
    ProbeRecord,
    compared_encoders,
    embed_all,
    probe_all,
    retrain_with_seeds,
    retrieval_all,
    task_tables,
    zero_shot_all,
)
from acula_pipeline.evaluation.splits import leakage_audit, require_no_leak
from acula_pipeline.evaluation.zero_shot import SharedSpace
from acula_pipeline.reports import ReportsParams
from acula_pipeline.training.stages import (
    AlignParams,
    PretrainParams,
    embed_reports,
    teacher_cache,
)

log = logging.getLogger(__name__)


def audit_leakage(
    splits: pd.DataFrame,
    aligned: dict[str, Any],
    reports: pd.DataFrame,
    reports_params: ReportsParams,
    recordings: pd.DataFrame,
) -> dict[str, Any]:
    """Fail the run if a test subject's audio (by subject or by content) or report
    reached alignment (unless ``reports.leakage.paper_like``, which reports the
    overlap instead)."""
    trained = aligned["config"].get("trained_subjects")
    if trained is None:
        raise ValueError(
            "the aligned model does not record the subjects it was trained on (made "
            "by an older version); rerun `kedro run --pipelines=align`"
        )
    audit = leakage_audit(splits, trained, reports["subject_id"], recordings)
    audit["paper_like"] = reports_params.leakage.paper_like
    if audit["ok"]:
        log.info("Leakage audit passed: no test subject reached alignment")
    elif reports_params.leakage.paper_like:
        log.warning("Leakage audit: overlap allowed by paper_like: %s", audit)
    else:
        require_no_leak(audit)
    return audit


def train_seed_models(
    store: FeatureStore,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    teacher_cache_dir: str,
    checkpoints: str,
    reports_params: ReportsParams,
    pretrain_params: PretrainParams,
    align_params: AlignParams,
    params: EvaluateParams,
) -> dict[int, dict[str, Any]]:
    """Baseline, aligned model and control retrained per extra training seed
    (``evaluate.train_seeds``), each audited for leakage like the pipeline's own."""
    if not params.train_seeds:
        return {}
    return retrain_with_seeds(
        store,
        segments,
        splits,
        reports,
        embed_reports(reports, align_params, teacher_cache_dir),
        pretrain_params,
        align_params,
        params.train_seeds,
        checkpoints,
        allow_overlap=reports_params.leakage.paper_like,
    )


def embed_for_evaluation(
    store: FeatureStore,
    segments: pd.DataFrame,
    baseline: dict[str, Any],
    aligned: dict[str, Any],
    control: dict[str, Any],
    seeds: dict[int, dict[str, Any]],
    cache_dir: str,
    audit: dict[str, Any],
    params: EvaluateParams,
) -> Embeddings:
    """Frozen embeddings of every clip per encoder (after the audit has passed)."""
    encoders = compared_encoders(baseline, aligned, control, params, store, seeds)
    return embed_all(encoders, store, segments, cache_dir, params.embed)


def run_probes(
    recordings: pd.DataFrame,
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    embeddings: Embeddings,
    params: EvaluateParams,
) -> tuple[list[ProbeRecord], dict[str, pd.DataFrame]]:
    """Linear probes on every task, dataset and encoder; the per-task embeddings."""
    records = probe_all(recordings, segments, splits, embeddings, params)
    return records, task_tables(records)


def zero_shot_and_retrieval(
    records: list[ProbeRecord],
    segments: pd.DataFrame,
    splits: pd.DataFrame,
    reports: pd.DataFrame,
    heldout_reports: pd.DataFrame,
    embeddings: Embeddings,
    aligned: dict[str, Any],
    cache_dir: str,
    params: EvaluateParams,
    align_params: AlignParams,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Zero-shot AUROC and audio→report retrieval through the aligned heads."""
    if not params.zero_shot and not params.retrieval.enabled:
        return [], []
    cache = teacher_cache(align_params.teacher, cache_dir)
    trained_with = aligned["config"]["teacher"]["key"]
    if cache.key != trained_with:
        raise ValueError(
            f"align.teacher (key {cache.key}) is not the teacher the aligned model was "
            f"trained with (key {trained_with}); rerun align or restore the setting"
        )
    space = SharedSpace(aligned)

    def encode(texts: list[str]) -> Any:
        return cache.embed(texts, align_params.teacher.batch_size)

    zs = zero_shot_all(records, space, encode) if params.zero_shot else []
    rt = []
    if params.retrieval.enabled and params.score_on != "test":
        log.info(
            "Retrieval skipped: it ranks the test subjects' held-out reports, and "
            "evaluate.score_on is %r",
            params.score_on,
        )
    elif params.retrieval.enabled:
        pool = pd.concat([reports, heldout_reports], ignore_index=True)
        rt = retrieval_all(
            pool, segments, splits, embeddings, space, encode, params.retrieval.ks
        )
    for z in zs:
        log.info("Zero-shot %s on %s: AUROC %.3f", z["task"], z["dataset"], z["auroc"])
    for r in rt:
        log.info(
            "Retrieval on %s (%d test units): R@1 %.3f, median rank %.1f",
            r["dataset"],
            r["queries"],
            r["R@1"],
            r["median_rank"],
        )
    return zs, rt


def write_results(
    records: list[ProbeRecord],
    zero_shot: list[dict[str, Any]],
    retrieval: list[dict[str, Any]],
    audit: dict[str, Any],
    validation: dict[str, Any],
    recordings: pd.DataFrame,
    aligned: dict[str, Any],
    baseline: dict[str, Any],
    tracking: str,
    params: EvaluateParams,
) -> tuple[
    dict[str, Any],
    dict[str, Any],
    dict[str, Any],
    str,
    Figure,
    Figure,
    dict[str, pd.DataFrame],
    Figure,
    str,
]:
    """metrics.json (the headline, for DVC), results.json (per task, with the
    settings), metrics_detail.json, results.md, figures, ROC CSVs and the HTML
    report; the same numbers in the DVCLive folder ``tracking``."""
    synthetic = bool(len(recordings)) and bool(
        recordings["is_synthetic"].fillna(False).all()
    )
    out = build_outputs(
        records,
        zero_shot,
        retrieval,
        audit,
        validation,
        params.probe,
        synthetic,
        provenance(recordings, params),
        run_settings(aligned["config"], baseline["config"], params),
    )
    head = out.metrics_detail["mean_auroc"]
    if head:
        log.info(
            "Mean AUROC over %d classification task(s)%s: baseline %.3f, aligned %.3f "
            "(Δ %+.3f)",
            head["tasks"],
            " (SYNTHETIC corpus)" if synthetic else "",
            head["baseline"],
            head["aligned"],
            head["delta"],
        )
    if out.overall is not None:
        for d in out.overall.diffs:
            log.info(
                "Mean AUROC, %s: %+.3f [%.3f, %.3f]: %s",
                d.name,
                d.ci.point,
                d.ci.low,
                d.ci.high,
                d.verdict,
            )
    from acula_pipeline.tracking import log_metrics

    log_metrics(tracking, {"mean": out.metrics, "tasks": out.results["tasks"]})
    return (
        out.metrics,
        out.results,
        out.metrics_detail,
        out.table,
        out.chart,
        out.roc,
        out.roc_curves,
        out.embedding_map,
        out.html,
    )

"""Thin nodes over ``acula_pipeline.validation``: one per suite, then summary and gate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.pipelines.ingest.params import IngestParams
from acula_pipeline.reports.summary import describe_makeup
from acula_pipeline.validation import (
    GXSession,
    ValidateParams,
    close_session,
    gate,
)
from acula_pipeline.validation.suites import (
    audio_quality_suite,
    feature_stats,
    features_suite,
    recordings_suite,
    reports_suite,
    segments_suite,
)

log = logging.getLogger(__name__)


def validate_recordings(
    recordings: pd.DataFrame, session: GXSession, params: ValidateParams
) -> dict[str, Any]:
    """Suite ``recordings``."""
    return session.validate(
        "recordings", *recordings_suite(recordings, params.recordings)
    ).as_dict()


def validate_audio_quality(
    quality: pd.DataFrame,
    recordings: pd.DataFrame,
    session: GXSession,
    params: ValidateParams,
) -> dict[str, Any]:
    """Suite ``audio_quality``."""
    suite = audio_quality_suite(quality, recordings, params.audio_quality)
    return session.validate("audio_quality", *suite).as_dict()


def validate_segments(
    segments: pd.DataFrame,
    recordings: pd.DataFrame,
    session: GXSession,
    params: ValidateParams,
) -> dict[str, Any]:
    """Suite ``segments``."""
    clips, _ = segments_suite(segments, recordings, params.segments)
    return session.validate("segments", *clips).as_dict()


def validate_subject_splits(
    segments: pd.DataFrame,
    recordings: pd.DataFrame,
    session: GXSession,
    params: ValidateParams,
) -> dict[str, Any]:
    """Suite ``subject_splits``: every subject in one split only."""
    _, subjects = segments_suite(segments, recordings, params.segments)
    return session.validate("subject_splits", *subjects).as_dict()


def validate_features(
    store: FeatureStore,
    segments: pd.DataFrame,
    session: GXSession,
    params: ValidateParams,
    ingest: IngestParams,
) -> dict[str, Any]:
    """Suite ``features`` (per-clip statistics of the shards)."""
    fe = ingest.frontend()
    expected = {
        "sample_rate": fe.sample_rate,
        "n_frames": fe.n_frames,
        "n_mels": fe.n_mels,
    }
    suite = features_suite(feature_stats(store), segments, expected, params.features)
    return session.validate("features", *suite).as_dict()


def validate_reports(
    reports: pd.DataFrame,
    report_rejects: pd.DataFrame,
    reports_summary: dict[str, Any],
    session: GXSession,
    params: ValidateParams,
) -> dict[str, Any]:
    """Suite ``reports``: one per unit that was not rejected or held out for
    evaluation; the backend's pass rate counts the units dropped for failing their
    checks."""
    expected = (
        int(reports_summary["units"])
        - int(reports_summary["rejected"])
        - int(reports_summary.get("heldout_reports", 0))
    )
    makeup = reports_summary.get("corpus")
    if makeup:
        log.info(
            "Validate: the alignment corpus: %s",
            describe_makeup(makeup, str(reports_summary.get("backend"))),
        )
    dropped = report_rejects[report_rejects["stage"] == "checks"]
    suite = reports_suite(reports, expected, params.reports, makeup, dropped)
    result = session.validate("reports", *suite).as_dict()
    return result | ({"corpus": makeup} if makeup else {})


def summarise_validation(
    recordings: dict[str, Any],
    audio_quality: dict[str, Any],
    segments: dict[str, Any],
    subject_splits: dict[str, Any],
    features: dict[str, Any],
    reports: dict[str, Any],
    session: GXSession,
) -> dict[str, Any]:
    """Counts per suite (DVC metrics) and the Data Docs."""
    suites = {
        "recordings": recordings,
        "audio_quality": audio_quality,
        "segments": segments,
        "subject_splits": subject_splits,
        "features": features,
        "reports": reports,
    }
    index = session.build_docs()
    close_session(session)
    if index is not None and index.is_relative_to(Path.cwd()):
        # Relative to the project, so the summary (a DVC dep of training) does not
        # depend on where the repository was cloned.
        index = index.relative_to(Path.cwd())
    return {
        "success": not any(s["critical_failed"] for s in suites.values()),
        "critical_failed": sum(s["critical_failed"] for s in suites.values()),
        "warning_failed": sum(s["warning_failed"] for s in suites.values()),
        "docs": str(index) if index else None,
        "suites": suites,
    }


def validation_gate(summary: dict[str, Any]) -> None:
    """Fail the run if a critical expectation failed (after the summary is saved)."""
    gate(summary)

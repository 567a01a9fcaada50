"""Thin nodes over ``acula_pipeline.reports``."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from acula_pipeline.reports import (
    ReportCache,
    ReportsParams,
    build_units,
    exclude_reserved,
    write_reports,
)
from acula_pipeline.reports.summary import plot_check_rates, summarise_reports

log = logging.getLogger(__name__)


def build_report_units(
    recordings: pd.DataFrame, segments: pd.DataFrame
) -> pd.DataFrame:
    """One unit per annotated cycle, else per recording with segments."""
    return build_units(recordings, segments)


def exclude_reserved_subjects(
    units: pd.DataFrame, params: ReportsParams
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Drop the units of subjects reserved for evaluation (leak-free default)."""
    kept, counts = exclude_reserved(
        units, params.leakage.exclude_splits, params.leakage.exclude_subjects
    )
    log.info(
        "Reports: %d units of %d subjects reserved for evaluation are excluded",
        counts["units"],
        counts["subjects"],
    )
    return kept, counts


def generate_reports(
    units: pd.DataFrame, cache: ReportCache, params: ReportsParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Write, check and cache the reports."""
    try:
        run = write_reports(units, params, cache)
    finally:
        cache.close()
    log.info(
        "Reports: %d written (%d backend calls, %d from cache), %d rejected",
        len(run.reports),
        run.stats["backend_calls"],
        run.stats["from_cache"],
        len(run.rejects),
    )
    return run.reports, run.rejects, run.stats


def summarise(
    reports: pd.DataFrame,
    rejects: pd.DataFrame,
    run_stats: dict[str, Any],
    exclusions: dict[str, Any],
) -> dict[str, Any]:
    """The summary written to ``data/08_reporting/reports_summary.json``."""
    return summarise_reports(reports, rejects, run_stats, exclusions)


def plot_checks(summary: dict[str, Any]) -> Figure:
    """Pass rate per check and dataset."""
    return plot_check_rates(summary)

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
from acula_pipeline.reports.summary import (
    corpus_makeup,
    describe_makeup,
    plot_check_rates,
    summarise_reports,
)

log = logging.getLogger(__name__)


def build_report_units(
    recordings: pd.DataFrame, segments: pd.DataFrame
) -> pd.DataFrame:
    """One unit per annotated cycle, else per recording with segments."""
    return build_units(recordings, segments)


def exclude_reserved_subjects(
    units: pd.DataFrame, splits: pd.DataFrame, params: ReportsParams
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Keep the units of subjects reserved for evaluation (the test split of the
    subject table, by default) out of the alignment corpus (leak-free default).

    Returns:
        Alignment units, held-out units (reported for retrieval only, if enabled) and
        the counts.
    """
    leak = params.leakage
    units = units.assign(
        split=units["subject_id"].map(splits.set_index("subject_id")["split"])
    )
    if leak.paper_like:
        log.warning(
            "Reports: reports.leakage.paper_like is true: test subjects' reports join "
            "the alignment corpus; probe results will be optimistic"
        )
        kept, counts = units, exclude_reserved(units, [], [])[1]
    else:
        kept, counts = exclude_reserved(
            units, leak.exclude_splits, leak.exclude_subjects
        )
    counts["paper_like"] = leak.paper_like
    held = (
        units[~units["unit_id"].isin(kept["unit_id"])]
        if leak.heldout_reports
        else units[:0]
    )
    log.info(
        "Reports: %d units of %d subjects reserved for evaluation are excluded from "
        "alignment%s",
        counts["units"],
        counts["subjects"],
        f"; {len(held)} get held-out reports for retrieval" if len(held) else "",
    )
    return kept, held.reset_index(drop=True), counts


def generate_reports(
    units: pd.DataFrame,
    heldout_units: pd.DataFrame,
    cache: ReportCache,
    params: ReportsParams,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Write, check and cache the reports: the alignment corpus and, apart, the
    held-out subjects' reports (retrieval only)."""
    try:
        run = write_reports(
            pd.concat([units, heldout_units], ignore_index=True), params, cache
        )
    finally:
        cache.close()
    held = run.reports["unit_id"].isin(heldout_units["unit_id"])
    reports = run.reports[~held].reset_index(drop=True)
    heldout = run.reports[held].reset_index(drop=True)
    log.info(
        "Reports: %d written for alignment and %d held out (%d backend calls, "
        "%d from cache), %d rejected",
        len(reports),
        len(heldout),
        run.stats["backend_calls"],
        run.stats["from_cache"],
        len(run.rejects),
    )
    makeup = corpus_makeup(
        reports, run.rejects[~run.rejects["unit_id"].isin(heldout_units["unit_id"])]
    )
    log.info(
        "Reports: the alignment corpus: %s",
        describe_makeup(makeup, run.stats["backend"]),
    )
    stats = run.stats | {"heldout_reports": len(heldout), "corpus": makeup}
    return reports, heldout, run.rejects, stats


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

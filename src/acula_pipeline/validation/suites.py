"""The expectation suites, as code, with thresholds from ``parameters_validate.yml``.

Each builder returns the table to validate (some are derived: a per-clip statistics
table for the feature shards, a per-subject split count) and its expectations, every
one carrying a severity: ``critical`` fails the run, ``warning`` is reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column
from pydantic import BaseModel, ConfigDict, Field

from acula_pipeline.audio.features import FeatureStore
from acula_pipeline.reports.checks import CHECKS, CheckCfg
from acula_pipeline.reports.generate import FALLBACK
from acula_pipeline.reports.judge import JUDGE
from acula_pipeline.sources import LABEL_VALUES

Severity = Literal["critical", "warning"]
Suite = tuple[pd.DataFrame, list[Any], str | None]  # table, expectations, id column
# ... and column → a sentence added to the message of a failure on that column
HintedSuite = tuple[pd.DataFrame, list[Any], str | None, dict[str, str]]
CRITICAL = FailureSeverity.CRITICAL  # fails the run
WARNING = FailureSeverity.WARNING  # reported


class AdapterBounds(BaseModel):
    """What a source's recordings may look like."""

    model_config = ConfigDict(extra="forbid")

    modalities: list[str]
    sample_rate: tuple[int, int]  # native, inclusive
    duration_s: tuple[float, float]


class RecordingsCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by_adapter: dict[str, AdapterBounds]
    duration_severity: Severity = "warning"
    check_paths: bool = True


class AudioQualityCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_nonfinite: int = 0  # critical
    max_silence_fraction_critical: float = 0.98  # all-silent recordings
    min_peak: float = 1e-4  # critical
    max_silence_fraction: float = 0.6  # warning
    max_clipping_fraction: float = 0.01  # warning
    max_abs_dc_offset: float = 0.05  # warning


class SegmentsCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    splits: list[str] = ["train", "val", "test"]
    min_duration_s: float = 0.05


class FeaturesCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value_range: tuple[float, float] = (0.0, 1.0)  # after per-clip min-max
    min_dynamic_range: float = 0.01  # max - min of a clip; a silent clip is flat
    dynamic_range_severity: Severity = "critical"


class ReportsCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_chars: int = 30
    max_chars: int = 700
    error_markers: list[str] = CheckCfg().error_markers
    min_pass_rate: float = Field(default=0.9, ge=0, le=1)  # backend reports passing
    pass_rate_severity: Severity = "critical"
    # share of the alignment corpus the template wrote because the backend's report
    # failed its checks (reports.on_failure: fallback_template)
    max_fallback_share: float = Field(default=0.1, ge=0, le=1)
    fallback_severity: Severity = "warning"
    max_duplicate_ratio: float = Field(default=0.5, ge=0, le=1)


class ValidateParams(BaseModel):
    """All of ``conf/base/parameters_validate.yml``."""

    model_config = ConfigDict(extra="forbid")

    recordings: RecordingsCfg
    audio_quality: AudioQualityCfg = AudioQualityCfg()
    segments: SegmentsCfg = SegmentsCfg()
    features: FeaturesCfg = FeaturesCfg()
    reports: ReportsCfg = ReportsCfg()
    examples: int = Field(default=5, ge=1)  # offending rows named per failure


def _adapter_of(table: pd.DataFrame) -> pd.Series:
    return table["adapter"].fillna(table["dataset"].str.removeprefix("synthetic_"))


def recordings_suite(recordings: pd.DataFrame, cfg: RecordingsCfg) -> Suite:
    """Identity, required fields, per-source modality, rate and duration, paths."""
    t = recordings.copy()
    t["adapter"] = _adapter_of(t)
    if cfg.check_paths:
        t["path_exists"] = [Path(p).is_file() for p in t["path"]]
    ex: list[Any] = [
        gxe.ExpectColumnValuesToBeUnique(column="recording_id", severity=CRITICAL),
        *(
            gxe.ExpectColumnValuesToNotBeNull(column=c, severity=CRITICAL)
            for c in ("subject_id", "path", "dataset", "modality", "sample_rate")
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="duration_s", severity=CRITICAL),
        gxe.ExpectColumnValuesToBeInSet(
            column="adapter", value_set=sorted(cfg.by_adapter), severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="sex", value_set=["female", "male", "other"], severity=CRITICAL
        ),
    ]
    for adapter, b in cfg.by_adapter.items():
        where = Column("adapter") == adapter
        # Each source's label columns hold only the values its adapter knows.
        ex += [
            gxe.ExpectColumnValuesToBeInSet(
                column=column,
                value_set=sorted(values),
                severity=CRITICAL,
                row_condition=where,
            )
            for column, values in LABEL_VALUES.get(adapter, {}).items()
            if column in t
        ]
        ex += [
            gxe.ExpectColumnValuesToBeInSet(
                column="modality",
                value_set=b.modalities,
                severity=CRITICAL,
                row_condition=where,
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="sample_rate",
                min_value=b.sample_rate[0],
                max_value=b.sample_rate[1],
                severity=CRITICAL,
                row_condition=where,
            ),
            gxe.ExpectColumnValuesToBeBetween(
                column="duration_s",
                min_value=b.duration_s[0],
                max_value=b.duration_s[1],
                severity=FailureSeverity(cfg.duration_severity),
                row_condition=where,
            ),
        ]
    if cfg.check_paths:
        ex.append(
            gxe.ExpectColumnValuesToBeInSet(
                column="path_exists", value_set=[True], severity=CRITICAL
            )
        )
    return t, ex, "recording_id"


def audio_quality_suite(
    quality: pd.DataFrame, recordings: pd.DataFrame, cfg: AudioQualityCfg
) -> Suite:
    """Per-recording signal statistics of the accepted recordings."""
    t = quality[quality["recording_id"].isin(recordings["recording_id"])]
    ex: list[Any] = [
        gxe.ExpectColumnValuesToBeBetween(
            column="nonfinite_count", max_value=cfg.max_nonfinite, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="silence_fraction",
            max_value=cfg.max_silence_fraction_critical,
            severity=CRITICAL,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="peak", min_value=cfg.min_peak, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="silence_fraction",
            max_value=cfg.max_silence_fraction,
            severity=WARNING,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="clipping_fraction",
            max_value=cfg.max_clipping_fraction,
            severity=WARNING,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="dc_offset",
            min_value=-cfg.max_abs_dc_offset,
            max_value=cfg.max_abs_dc_offset,
            severity=WARNING,
        ),
    ]
    return t, ex, "recording_id"


def segments_suite(
    segments: pd.DataFrame, recordings: pd.DataFrame, cfg: SegmentsCfg
) -> tuple[Suite, Suite]:
    """Clip index: identity, traceability, times, splits; and subject-disjointness."""
    t = segments.assign(duration_s=segments["end_s"] - segments["start_s"])
    ex: list[Any] = [
        gxe.ExpectColumnValuesToBeUnique(column="segment_id", severity=CRITICAL),
        gxe.ExpectColumnValuesToBeInSet(
            column="recording_id",
            value_set=sorted(recordings["recording_id"]),
            severity=CRITICAL,
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="split", value_set=cfg.splits, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="subject_id", severity=CRITICAL),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end_s", column_B="start_s", severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="start_s", min_value=0.0, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="duration_s", min_value=cfg.min_duration_s, severity=CRITICAL
        ),
    ]
    per_subject = (
        segments.groupby("subject_id")["split"]
        .agg(n_splits="nunique", splits=lambda s: ",".join(sorted(set(s))))
        .reset_index()
    )
    disjoint: list[Any] = [
        gxe.ExpectColumnValuesToBeBetween(
            column="n_splits", min_value=1, max_value=1, severity=CRITICAL
        )
    ]
    return (t, ex, "segment_id"), (per_subject, disjoint, "subject_id")


def feature_stats(store: FeatureStore) -> pd.DataFrame:
    """Per-clip shape, finiteness and value range, one shard in memory at a time."""
    rows = []
    index = store.index
    for k, part in index.groupby("shard", sort=True):
        x = np.asarray(store.shard(int(k)), dtype=np.float32)[part["row"].to_numpy()]
        flat = x.reshape(len(x), -1)
        finite = np.isfinite(flat).all(axis=1)
        with np.errstate(invalid="ignore"):
            lo = np.where(finite, flat.min(axis=1), np.nan)
            hi = np.where(finite, flat.max(axis=1), np.nan)
        rows.append(
            pd.DataFrame(
                {
                    "segment_id": part["segment_id"].to_numpy(),
                    "n_frames": x.shape[1],
                    "n_mels": x.shape[2],
                    "finite": finite,
                    "min": lo,
                    "max": hi,
                }
            )
        )
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if len(out):
        out["dynamic_range"] = out["max"] - out["min"]
        out["sample_rate"] = int(store.meta["frontend"]["sample_rate"])
    return out


def features_suite(
    stats: pd.DataFrame,
    segments: pd.DataFrame,
    expected: dict[str, int],
    cfg: FeaturesCfg,
) -> Suite:
    """Shapes and rate as configured, finite, normalised range, one clip per segment.

    Args:
        stats: ``feature_stats`` of the store.
        segments: The clip index the store must match.
        expected: ``sample_rate``, ``n_frames`` and ``n_mels`` from the ingest settings.
        cfg: Thresholds.
    """
    lo, hi = cfg.value_range
    ex: list[Any] = [
        gxe.ExpectTableRowCountToEqual(value=len(segments), severity=CRITICAL),
        gxe.ExpectColumnValuesToBeUnique(column="segment_id", severity=CRITICAL),
        gxe.ExpectColumnValuesToBeInSet(
            column="segment_id",
            value_set=sorted(segments["segment_id"]),
            severity=CRITICAL,
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="sample_rate",
            value_set=[expected["sample_rate"]],
            severity=CRITICAL,
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="n_frames", value_set=[expected["n_frames"]], severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="n_mels", value_set=[expected["n_mels"]], severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="finite", value_set=[True], severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="min", min_value=lo, max_value=hi, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="max", min_value=lo, max_value=hi, severity=CRITICAL
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="dynamic_range",
            min_value=cfg.min_dynamic_range,
            severity=FailureSeverity(cfg.dynamic_range_severity),
        ),
    ]
    return stats, ex, "segment_id"


def _dropped_rows(dropped: pd.DataFrame) -> pd.DataFrame:
    """Units whose backend report failed its checks and was dropped
    (``reports.on_failure: drop``), as rows of the pass-rate: not passed, with the
    checks their reason names failed."""
    checks = [*CHECKS, JUDGE]
    rows = []
    for r in dropped.to_dict("records"):
        named = set(re.split(r";\s*|:\s*", str(r.get("reason", ""))))
        rows.append(
            {
                "unit_id": r.get("unit_id"),
                "dataset": r.get("dataset"),
                "kept": False,
                "backend_passed": False,
                **{f"check_{c}": (False if c in named else None) for c in checks},
            }
        )
    return pd.DataFrame(rows)


def reports_suite(
    reports: pd.DataFrame,
    expected_rows: int | None,
    cfg: ReportsCfg,
    makeup: dict[str, dict[str, Any]] | None = None,
    dropped: pd.DataFrame | None = None,
) -> HintedSuite:
    """One non-empty, well-bounded, marker-free report per unit; faithful, varied;
    few template fallbacks (``makeup``: the reports summary's ``corpus``).

    The backend's pass rate is over every report it wrote: with ``dropped`` (the
    rejects of stage ``checks``), the units dropped for failing their checks count as
    failures, so ``on_failure: drop`` cannot hide a failing backend. They are rows of
    the table with ``kept`` false; every other expectation reads the kept rows only.
    """
    t = reports.copy()
    t["kept"] = True
    if dropped is not None and len(dropped):
        t = pd.concat([t, _dropped_rows(dropped)], ignore_index=True)
    t["backend_passed_rate"] = t["backend_passed"].astype(float)
    t["template_fallback"] = (t["source"] == FALLBACK).astype(float)
    n_dropped = int((~t["kept"].astype(bool)).sum())
    kept: dict[str, Any] = (
        {"row_condition": Column("kept") == True} if n_dropped else {}  # noqa: E712
    )
    ex: list[Any] = [
        gxe.ExpectColumnValuesToBeUnique(column="unit_id", severity=CRITICAL),
        gxe.ExpectColumnValuesToNotBeNull(column="report", severity=CRITICAL, **kept),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="report",
            min_value=cfg.min_chars,
            max_value=cfg.max_chars,
            severity=CRITICAL,
            **kept,
        ),
        gxe.ExpectColumnValuesToNotMatchRegexList(
            column="report",
            regex_list=[f"(?i){m}" for m in cfg.error_markers],
            severity=CRITICAL,
            **kept,
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="backend_passed_rate",
            min_value=cfg.min_pass_rate,
            severity=FailureSeverity(cfg.pass_rate_severity),
        ),
        gxe.ExpectColumnProportionOfUniqueValuesToBeBetween(
            column="report",
            min_value=1.0 - cfg.max_duplicate_ratio,
            severity=CRITICAL,
            **kept,
        ),
        gxe.ExpectColumnMeanToBeBetween(
            column="template_fallback",
            max_value=cfg.max_fallback_share,
            severity=FailureSeverity(cfg.fallback_severity),
            **kept,
        ),
    ]
    if expected_rows is not None:
        ex.insert(
            0,
            gxe.ExpectTableRowCountToEqual(
                value=expected_rows + n_dropped, severity=CRITICAL
            ),
        )
    return t, ex, "unit_id", _report_hints(t, cfg, makeup)


def _report_hints(
    t: pd.DataFrame, cfg: ReportsCfg, makeup: dict[str, dict[str, Any]] | None
) -> dict[str, str]:
    """What a failed pass-rate or fallback expectation means, in numbers."""
    failed = t[~t["backend_passed"].astype(bool)]
    dropped = int((~t["kept"].astype(bool)).sum()) if "kept" in t else 0
    counts = {
        c.removeprefix("check_"): int(failed[c].eq(False).sum())
        for c in t.columns
        if c.startswith("check_")
    }
    top = sorted(((n, c) for c, n in counts.items() if n), key=lambda x: -x[0])[:3]
    rate = float(t["backend_passed_rate"].mean()) if len(t) else float("nan")
    pass_rate = (
        f"{rate:.1%} of {len(t)} reports passed every check on the backend's text"
        + (
            f" ({dropped} of them dropped for failing, reports.on_failure: drop)"
            if dropped
            else ""
        )
        + ", "
        f"below validate.reports.min_pass_rate = {cfg.min_pass_rate:.0%}; "
        "most common failed checks: "
        + (", ".join(f"{c} ({n})" for n, c in top) or "none recorded")
    )
    k = t[t["kept"].astype(bool)] if "kept" in t else t
    share = float(k["template_fallback"].mean()) if len(k) else float("nan")
    per_dataset = (
        "; ".join(
            f"{ds} {m['fallback_template']}/{m['units']}"
            for ds, m in makeup.items()
            if ds != "all"
        )
        if makeup
        else ""
    )
    fallback = (
        f"{share:.1%} of the alignment corpus is template text written because the "
        "backend's report failed its checks (reports.on_failure: fallback_template), "
        f"above validate.reports.max_fallback_share = {cfg.max_fallback_share:.0%}"
        + (f"; per dataset: {per_dataset}" if per_dataset else "")
    )
    return {"backend_passed_rate": pass_rate, "template_fallback": fallback}

"""Helpers for the report tests: units from a corpus folder and default parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from acula_pipeline.audio.framing import ClipPolicy, make_segments
from acula_pipeline.evaluation.splits import SplitParams, split_of_subjects
from acula_pipeline.reports import ReportsParams, build_units
from acula_pipeline.sources import scan_source, scans_to_frames

from .conftest import REPO


def units_from(roots: dict[str, tuple[Path, bool]]) -> pd.DataFrame:
    """Alignment units of ``{adapter: (root, is_synthetic)}``."""
    scans = [
        scan_source(adapter, root, ("synthetic_" if syn else "") + adapter, syn)
        for adapter, (root, syn) in roots.items()
    ]
    recordings, cycles, _ = scans_to_frames(scans)
    split_of = split_of_subjects(recordings, SplitParams())
    segments = make_segments(recordings, cycles, ClipPolicy(), split_of)
    return build_units(recordings, segments)


def synthetic_units(corpus: Path) -> pd.DataFrame:
    """Units of every dataset of a synthetic corpus."""
    return units_from(
        {a: (corpus / a, True) for a in ("icbhi2017", "circor2022", "coswara")}
    )


def params(**overrides: Any) -> ReportsParams:
    """``conf/base/parameters_reports.yml`` with overrides, no progress bars."""
    raw = yaml.safe_load((REPO / "conf/base/parameters_reports.yml").read_text())
    merged = raw["reports"] | {"progress": False} | overrides
    return ReportsParams.model_validate(merged)

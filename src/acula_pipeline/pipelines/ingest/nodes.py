"""Nodes of the ``ingest`` pipeline: thin wrappers over ``acula_pipeline.sources``/``audio``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from acula_pipeline.audio.audit import audit_recordings
from acula_pipeline.audio.features import iter_feature_shards
from acula_pipeline.audio.framing import make_segments
from acula_pipeline.evaluation.splits import (
    identical_audio,
    keep_identical_audio_together,
    make_splits,
)
from acula_pipeline.pipelines.ingest.params import IngestParams
from acula_pipeline.sources import scan_source, scans_to_frames
from acula_pipeline.sources.overview import ingest_overview

logger = logging.getLogger(__name__)


def scan_sources(
    params: IngestParams, synthetic_root: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Run the adapter of every enabled source.

    Args:
        params: Ingest parameters.
        synthetic_root: Folder of the generated corpus (from the catalog).

    Returns:
        Scanned recordings, annotated cycles and scan-stage quarantine rows.
    """
    scans = []
    for name, src in params.sources.items():
        if not src.enabled:
            continue
        if name == "synthetic":
            if not Path(synthetic_root, "manifest.json").exists():
                raise FileNotFoundError(
                    f"{synthetic_root} holds no generated corpus (no manifest.json); run "
                    "`kedro run --pipelines=corpus` or `dvc repro` first"
                )
            # The corpus writes each dataset's layout under <root>/<adapter name>/.
            for adapter in src.generate.subjects:  # type: ignore[union-attr]
                root = Path(synthetic_root, adapter)
                scans.append(scan_source(adapter, root, f"synthetic_{adapter}", True))
        else:
            scans.append(scan_source(src.adapter or name, src.root, name, False))
    recordings, cycles, quarantine = scans_to_frames(scans)
    # Paths inside the project are stored relative to it, so tables do not depend on
    # where the repository was cloned.
    for table in (recordings, quarantine):
        table["path"] = [_project_relative(p) for p in table["path"]]
    logger.info(
        "Scanned %d recordings (%d annotated cycles); %d inputs quarantined",
        len(recordings),
        len(cycles),
        len(quarantine),
    )
    return recordings, cycles, quarantine


def _project_relative(path: str) -> str:
    p, cwd = Path(path).absolute(), Path.cwd()
    return str(p.relative_to(cwd)) if p.is_relative_to(cwd) else str(p)


def audit_audio(
    scanned: pd.DataFrame, params: IngestParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decode every recording: quality table, accepted recordings, audit quarantine."""
    return audit_recordings(scanned, params.quality, params.workers)


def split_subjects(recordings: pd.DataFrame, params: IngestParams) -> pd.DataFrame:
    """The subject-disjoint train/val/test table (stratified per dataset, official
    test sets kept) that every later stage reads; subjects sharing identical audio
    sit on one side of it."""
    return keep_identical_audio_together(
        make_splits(recordings, params.split), recordings
    )


def build_segments(
    recordings: pd.DataFrame,
    cycles: pd.DataFrame,
    splits: pd.DataFrame,
    params: IngestParams,
) -> pd.DataFrame:
    """Cut accepted recordings into cycles or windows, each carrying its subject's
    split."""
    split_of = dict(zip(splits["subject_id"], splits["split"], strict=True))
    return make_segments(recordings, cycles, params.clips, split_of)


def extract_features(
    segments: pd.DataFrame, recordings: pd.DataFrame, params: IngestParams
) -> dict[str, Any]:
    """Describe the feature shards; the catalog writes them as they are computed."""
    frontend = params.frontend()
    shards = iter_feature_shards(
        segments,
        dict(zip(recordings["recording_id"], recordings["path"], strict=True)),
        frontend,
        pad_mode=params.clips.pad_mode,
        shard_size=params.features.shard_size,
        workers=params.workers,
        keep_waveforms=params.features.keep_waveforms,
    )
    meta = {
        "frontend": frontend.to_dict(),
        "pad_mode": params.clips.pad_mode,
        "shape": [frontend.n_frames, frontend.n_mels],
        "dtype": "float16",
        "is_synthetic": bool(recordings["is_synthetic"].all()),
    }
    return {"shards": shards, "meta": meta}


def collect_quarantine(
    scan_quarantine: pd.DataFrame, audit_quarantine: pd.DataFrame
) -> pd.DataFrame:
    """Join the scan- and audit-stage quarantine rows, logging each with its reason."""
    quarantine = pd.concat([scan_quarantine, audit_quarantine], ignore_index=True)
    for row in quarantine.itertuples(index=False):
        logger.warning("Quarantined %s: %s", row.path, row.reason)
    return quarantine


def summarise(
    recordings: pd.DataFrame, segments: pd.DataFrame, quarantine: pd.DataFrame
) -> dict[str, Any]:
    """Count what each dataset contributed and what was quarantined (DVC metrics)."""
    same = identical_audio(recordings)
    summary: dict[str, Any] = {
        "recordings": len(recordings),
        "segments": len(segments),
        "quarantined": len(quarantine),
        # recordings whose audio is identical to another's (same digest), in groups
        "identical_audio": {
            "recordings": sum(map(len, same)),
            "groups": len(same),
        },
        "datasets": {},
    }
    for ds in sorted(set(recordings["dataset"]) | set(quarantine["dataset"])):
        summary["datasets"][ds] = {
            "recordings": int((recordings["dataset"] == ds).sum()),
            "subjects": int(
                recordings.loc[recordings["dataset"] == ds, "subject_id"].nunique()
            ),
            "segments": int((segments["dataset"] == ds).sum()),
            "quarantined": int((quarantine["dataset"] == ds).sum()),
        }
    logger.info(
        "Ingest: %d recordings, %d segments, %d quarantined",
        len(recordings),
        len(segments),
        len(quarantine),
    )
    return summary


def plot_overview(
    recordings: pd.DataFrame, quarantine: pd.DataFrame, segments: pd.DataFrame
) -> Figure:
    """One-page figure of the ingest result for ``data/08_reporting``."""
    return ingest_overview(recordings, quarantine, segments)

"""Decode every recording once at its native rate: quality statistics and rejections."""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from acula_pipeline.audio.io import AudioReadError, read_blocks
from acula_pipeline.audio.quality import (
    QUALITY_COLUMNS,
    QualityAccumulator,
    QualityCfg,
    rejection_reason,
)

logger = logging.getLogger(__name__)


def _audit_one(cfg: QualityCfg, item: tuple[str, str]) -> dict[str, Any]:
    """One recording's statistics, read in blocks: memory is bounded by the block,
    not the file (a 1-hour 48 kHz file is 173 M samples)."""
    recording_id, path = item
    try:
        sr, blocks = read_blocks(path)
        acc = QualityAccumulator(sr, cfg)
        digest = hashlib.sha256(f"{sr}\n".encode())
        for block in blocks:
            acc.add(block)
            digest.update(np.ascontiguousarray(block, dtype="<f4").tobytes())
    except AudioReadError as exc:
        return {"recording_id": recording_id, "reason": str(exc)}
    stats = acc.stats()
    reason = rejection_reason(stats, acc.n / sr, cfg)
    return {
        "recording_id": recording_id,
        "reason": reason,
        "audio_sha256": digest.hexdigest(),
        **stats,
    }


def audit_recordings(
    recordings: pd.DataFrame, cfg: QualityCfg, workers: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decode each recording, compute quality statistics and reject unusable ones.

    Args:
        recordings: Unified recordings rows from the adapters.
        cfg: Rejection thresholds.
        workers: Processes used for decoding.

    Returns:
        ``(accepted recordings, quality table, quarantine rows)``; the quality table has
        one row per decodable recording, accepted or not. Accepted recordings carry
        ``audio_sha256``, a digest of the decoded samples and rate: the same audio
        under two names (or in two formats) has one digest.
    """
    items = list(zip(recordings["recording_id"], recordings["path"], strict=True))
    job = partial(_audit_one, cfg)
    if workers > 1 and len(items) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(
                tqdm(
                    pool.map(job, items, chunksize=4),
                    total=len(items),
                    desc="audit audio",
                )
            )
    else:
        results = [job(i) for i in tqdm(items, desc="audit audio")]
    res = pd.DataFrame(
        results, columns=["recording_id", "reason", "audio_sha256", *QUALITY_COLUMNS]
    )
    quality = (
        res.dropna(subset=["peak"])
        .drop(columns=["reason", "audio_sha256"])
        .reset_index(drop=True)
    )
    rejected = res[res["reason"].notna()].merge(recordings, on="recording_id")
    quarantine = pd.DataFrame(
        {
            "dataset": rejected["dataset"],
            "path": rejected["path"],
            "record": rejected["recording_id"],
            "stage": "audit",
            "reason": rejected["reason"],
        }
    )
    accepted = recordings[
        ~recordings["recording_id"].isin(rejected["recording_id"])
    ].merge(res[["recording_id", "audio_sha256"]], on="recording_id", how="left")
    logger.info(
        "Audio audit: %d recordings decoded, %d accepted, %d quarantined",
        len(recordings),
        len(accepted),
        len(quarantine),
    )
    return accepted.reset_index(drop=True), quality, quarantine.reset_index(drop=True)

"""Log-mel feature shards: extraction (decode once, both cores) and a memory-mapped store."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from acula_pipeline.audio.frontend import (
    FrontendCfg,
    LogMelFrontend,
    fit_clip,
    resample,
)
from acula_pipeline.audio.io import (
    PYAV_SUFFIXES,
    audio_info,
    read_audio,
    read_frames,
    to_mono,
)
from acula_pipeline.runtime import atomic_folder, file_digest

logger = logging.getLogger(__name__)
_FRONTENDS: dict[FrontendCfg, LogMelFrontend] = {}
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class FeatureShard:
    """A block of consecutive segments' features (and optionally their waveforms)."""

    segment_ids: list[str]
    features: np.ndarray  # (n, frames, n_mels) float16
    waveforms: np.ndarray | None = None  # (n, clip_samples) float16


# A recording longer than this is decoded and resampled one window of clips at a
# time, so its memory is bounded by the window, not the file.
WINDOW_S = 120.0
# Clips cut and turned into features together (float32 clips: 0.5 MB each).
CLIPS_AT_ONCE = 32


def recording_clips(
    path: str,
    spans: list[tuple[float, float]],
    cfg: FrontendCfg,
    pad_mode: str,
    window_s: float = WINDOW_S,
) -> np.ndarray:
    """Decode one recording, resample it to ``cfg.sample_rate`` and cut fitted clips.

    A recording longer than ``window_s`` is read a window at a time, each window
    starting on the resampling grid with context on both sides, so its clips are
    the same as from the whole file (exactly for rates whose kernel is exact,
    ``frontend.MAX_PHASES``).

    Returns:
        float32 array ``(len(spans), cfg.clip_samples)``.
    """
    new = cfg.sample_rate
    whole = Path(path).suffix.lower() in PYAV_SUFFIXES  # decoded whole anyway
    info = None if whole else audio_info(path)
    if info is None or info.duration_s <= window_s:
        samples, sr = read_audio(path)
        return wave_clips(to_mono(samples), sr, spans, cfg, pad_mode)
    clips: list[np.ndarray | None] = [None] * len(spans)
    for group in _windows(spans, window_s, cfg.clip_seconds):
        lo = min(spans[i][0] for i in group)
        hi = max(min(spans[i][1], spans[i][0] + cfg.clip_seconds) for i in group)
        wave, offset = _resampled_window(
            path, info.sample_rate, info.frames, lo, hi, new
        )
        for i in group:
            clips[i] = _cut(wave, offset, spans[i], cfg, pad_mode)
    return np.stack(clips).astype(np.float32)  # type: ignore[arg-type]


def wave_clips(
    mono: np.ndarray,
    sample_rate: int,
    spans: list[tuple[float, float]],
    cfg: FrontendCfg,
    pad_mode: str,
) -> np.ndarray:
    """Fitted clips ``(len(spans), cfg.clip_samples)`` float32 of a decoded mono
    signal, resampled to ``cfg.sample_rate`` first."""
    wave = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))
    resampled = resample(wave, sample_rate, cfg.sample_rate).numpy()
    return np.stack([_cut(resampled, 0, s, cfg, pad_mode) for s in spans])


def _cut(
    wave: np.ndarray,
    offset: int,
    span: tuple[float, float],
    cfg: FrontendCfg,
    pad_mode: str,
) -> np.ndarray:
    """The clip of ``span`` from ``wave``, whose first sample is ``offset``."""
    start, end = span
    a = int(round(start * cfg.sample_rate))
    b = min(int(round(end * cfg.sample_rate)), a + cfg.clip_samples)
    return fit_clip(wave[a - offset : b - offset], cfg.clip_samples, pad_mode).astype(
        np.float32
    )


def _windows(
    spans: list[tuple[float, float]], window_s: float, clip_s: float
) -> list[list[int]]:
    """Span indices grouped (in start order) so each group lies within a window."""
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    groups: list[list[int]] = []
    lo = 0.0
    for i in order:
        end = min(spans[i][1], spans[i][0] + clip_s)
        if groups and end - lo <= window_s:
            groups[-1].append(i)
        else:
            groups.append([i])
            lo = spans[i][0]
    return groups


def _resampled_window(
    path: str, orig: int, frames: int, lo: float, hi: float, new: int
) -> tuple[np.ndarray, int]:
    """Samples ``lo``–``hi`` s of ``path`` at rate ``new``, and the index of the
    first one in the resampled whole file. The excerpt starts on the resampling
    grid (a multiple of ``orig / gcd`` input samples) with 0.1 s of context each
    side, so the kernel sees what it would in the whole file."""
    g = math.gcd(orig, new)
    unit_in, unit_out = orig // g, new // g
    start_out = max(0, int(math.floor(lo * new)) - new // 10) // unit_out * unit_out
    start_in = start_out // unit_out * unit_in
    stop_in = min(frames, int(math.ceil(hi * orig)) + orig // 10 + unit_in)
    samples, sr = read_frames(path, start_in, stop_in)
    mono = torch.from_numpy(np.ascontiguousarray(to_mono(samples)))
    return resample(mono, sr, new).numpy(), start_out


def clip_features(clips: np.ndarray, cfg: FrontendCfg) -> np.ndarray:
    """Normalised log-mel features ``(n, frames, n_mels)`` of fitted clips."""
    # Built once per process and configuration (setdefault would build one per call).
    if cfg not in _FRONTENDS:
        _FRONTENDS[cfg] = LogMelFrontend(cfg)
    frontend = _FRONTENDS[cfg]
    with torch.inference_mode():
        return frontend(torch.from_numpy(clips)).numpy()


def _recording_job(
    cfg: FrontendCfg,
    pad_mode: str,
    keep_waveforms: bool,
    item: tuple[str, list[tuple[float, float]]],
) -> tuple[np.ndarray, np.ndarray | None]:
    # One intra-op thread per worker: the parallelism is across recordings.
    torch.set_num_threads(1)
    path, spans = item
    feats, waves = [], []
    # A few dozen clips at a time: a long recording's float32 clips never all at once
    for i in range(0, len(spans), CLIPS_AT_ONCE):
        clips = recording_clips(path, spans[i : i + CLIPS_AT_ONCE], cfg, pad_mode)
        feats.append(clip_features(clips, cfg).astype(np.float16))
        if keep_waveforms:
            waves.append(clips.astype(np.float16))
    return np.concatenate(feats), np.concatenate(waves) if keep_waveforms else None


def iter_feature_shards(
    segments: pd.DataFrame,
    paths: dict[str, str],
    cfg: FrontendCfg,
    *,
    pad_mode: str = "repeat",
    shard_size: int = 512,
    workers: int = 2,
    keep_waveforms: bool = False,
) -> Iterator[FeatureShard]:
    """Compute features for every segment, yielding shards in segment order.

    Each recording is decoded and resampled once for all its segments. At most a
    shard plus the workers' in-flight recordings are in memory.

    Args:
        segments: Clip index (``segment_id``, ``recording_id``, ``start_s``, ``end_s``),
            grouped by recording.
        paths: Audio path per recording id.
        cfg: Frontend settings.
        pad_mode: How clips shorter than ``cfg.clip_seconds`` are filled.
        shard_size: Segments per shard.
        workers: Decoding processes (1 runs in this process).
        keep_waveforms: Also keep the 16 kHz clips, for waveform encoders.
    """
    groups = [(rid, g) for rid, g in segments.groupby("recording_id", sort=False)]
    items = [
        (paths[rid], list(zip(g["start_s"], g["end_s"], strict=True)))
        for rid, g in groups
    ]
    job = partial(_recording_job, cfg, pad_mode, keep_waveforms)
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    results: Iterable = (
        bounded_map(pool, job, items, 4 * workers) if pool else map(job, items)
    )
    ids: list[str] = []
    feats: list[np.ndarray] = []
    waves: list[np.ndarray] = []
    try:
        for (_, g), (f, w) in tqdm(
            zip(groups, results, strict=True),
            total=len(groups),
            desc="log-mel features",
        ):
            ids += list(g["segment_id"])
            feats.append(f)
            if w is not None:
                waves.append(w)
            while len(ids) >= shard_size:
                yield _take(ids, feats, waves, shard_size)
        if ids:
            yield _take(ids, feats, waves, len(ids))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def bounded_map(
    pool: Executor, fn: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[R]:
    """Like ``pool.map`` but with at most ``ahead`` tasks in flight.

    ``Executor.map`` submits every task at once, so finished results pile up in memory
    whenever the consumer is slower than the workers; this keeps memory flat.
    """
    pending: deque[Future[R]] = deque()
    source = iter(items)
    for item in source:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _take(
    ids: list[str], feats: list[np.ndarray], waves: list[np.ndarray], n: int
) -> FeatureShard:
    f = np.concatenate(feats)
    w = np.concatenate(waves) if waves else None
    shard = FeatureShard(ids[:n], f[:n], None if w is None else w[:n])
    del ids[:n]
    feats[:] = [f[n:]] if len(f) > n else []
    waves[:] = [w[n:]] if w is not None and len(w) > n else []
    return shard


def write_feature_store(
    root: str | Path, shards: Iterable[FeatureShard], meta: dict[str, Any]
) -> int:
    """Write shards as ``.npy`` files with an index, replacing ``root`` atomically.

    Returns:
        Number of segments written.
    """
    index = []
    with atomic_folder(root) as tmp:
        for k, shard in enumerate(shards):
            np.save(tmp / f"shard_{k:05d}.npy", shard.features)
            if shard.waveforms is not None:
                np.save(tmp / f"shard_{k:05d}.wave.npy", shard.waveforms)
            index += [(sid, k, row) for row, sid in enumerate(shard.segment_ids)]
        pd.DataFrame(index, columns=["segment_id", "shard", "row"]).to_parquet(
            tmp / "index.parquet"
        )
        (tmp / "meta.json").write_text(
            json.dumps(meta | {"n_segments": len(index)}, indent=2)
        )
    return len(index)


class FeatureStore:
    """Read-only, memory-mapped access to a feature store written by ``write_feature_store``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "index.parquet").exists():
            raise FileNotFoundError(
                f"{self.root}: not a feature store (no index.parquet)"
            )
        self.index = pd.read_parquet(self.root / "index.parquet")
        self.meta = json.loads((self.root / "meta.json").read_text())
        self._rows = {sid: (s, r) for sid, s, r in self.index.itertuples(index=False)}
        self._maps: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def digest(self) -> str:
        """The store's identity: its settings and content (a digest of every file:
        shards, index; remembered by path, size and mtime), so a rewritten shard
        is new clips even under the old settings."""
        h = hashlib.sha256(json.dumps(self.meta, sort_keys=True, default=str).encode())
        for f in sorted(self.root.iterdir()):
            if f.is_file() and f.name != "meta.json":
                h.update(f"{f.name}:{file_digest(f)}\n".encode())
        return h.hexdigest()

    @property
    def has_waveforms(self) -> bool:
        """Whether ingest kept the 16 kHz clips (``keep_waveforms``)."""
        return (self.root / "shard_00000.wave.npy").exists()

    def shard(self, k: int, waveforms: bool = False) -> np.ndarray:
        """Memory-map shard ``k`` (features, or the kept waveforms)."""
        name = f"shard_{k:05d}{'.wave' if waveforms else ''}.npy"
        if name not in self._maps:
            self._maps[name] = np.load(self.root / name, mmap_mode="r")
        return self._maps[name]

    def get(self, segment_id: str, waveforms: bool = False) -> np.ndarray:
        """Features (or waveform) of one segment."""
        shard, row = self._rows[segment_id]
        return self.shard(shard, waveforms)[row]

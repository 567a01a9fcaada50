"""Ingest throughput: seconds of audio turned into log-mel features per second of wall time.

Ours (soundfile decode + torchaudio resample and mel, one decode per recording, a process
per core) against a reference doing what the AcuLa/OPERA loaders do per file
per clip: ``librosa.load(sr=16000)``, then ``librosa.feature.melspectrogram`` +
``power_to_db`` + min-max), on the same mixed-rate files in the same run. A second
reference loads each file once for all its clips, a stronger baseline.

    python benchmarks/ingest_throughput.py [--files 96] [--seconds 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import soundfile as sf

from acula_pipeline.audio.features import iter_feature_shards
from acula_pipeline.audio.framing import ClipPolicy, window_starts
from acula_pipeline.audio.frontend import FrontendCfg, fit_clip
from acula_pipeline.audio.reference import opera_logmel

RATES = ((4000, "PCM_16"), (44100, "PCM_24"), (48000, "PCM_16"))


def make_files(folder: Path, n: int, seconds: float) -> list[tuple[Path, float]]:
    """Write ``n`` noisy-tone recordings cycling through 4 kHz, 44.1 kHz and 48 kHz."""
    rng = np.random.default_rng(0)
    files = []
    for i in range(n):
        sr, subtype = RATES[i % len(RATES)]
        t = np.arange(int(seconds * sr)) / sr
        x = 0.2 * np.sin(
            2 * np.pi * rng.uniform(100, 900) * t
        ) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"rec{i:03d}_{sr}.wav"
        sf.write(path, x, sr, subtype=subtype)
        files.append((path, seconds))
    return files


def segments_for(files: list[tuple[Path, float]], policy: ClipPolicy) -> pd.DataFrame:
    rows = [
        (f"{p.stem}#{k}", p.stem, s, min(s + policy.clip_seconds, d))
        for p, d in files
        for k, s in enumerate(window_starts(d, policy))
    ]
    return pd.DataFrame(
        rows, columns=["segment_id", "recording_id", "start_s", "end_s"]
    )


def ours(files, seg, cfg: FrontendCfg, workers: int) -> np.ndarray:
    paths = {p.stem: str(p) for p, _ in files}
    shards = iter_feature_shards(seg, paths, cfg, pad_mode="zeros", workers=workers)
    return np.concatenate([s.features for s in shards])


def reference(files, seg, cfg: FrontendCfg, per_clip: bool) -> np.ndarray:
    """The authors' path; ``per_clip`` reloads (and resamples) the file for every clip."""
    out = []
    for path, _ in files:
        y = None
        for s, e in seg.loc[
            seg["recording_id"] == path.stem, ["start_s", "end_s"]
        ].itertuples(index=False):
            if y is None or per_clip:
                y, _ = librosa.load(path, sr=cfg.sample_rate)
            a = int(round(s * cfg.sample_rate))
            b = min(int(round(e * cfg.sample_rate)), a + cfg.clip_samples)
            out.append(opera_logmel(fit_clip(y[a:b], cfg.clip_samples, "zeros"), cfg))
    return np.stack(out)


def timed(fn, *args) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=96)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    cfg, policy = FrontendCfg(), ClipPolicy()
    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(Path(tmp), args.files, args.seconds)
        seg = segments_for(files, policy)
        audio_s = sum(d for _, d in files)
        # Warm both paths on one file so that imports and first-call costs are excluded.
        first = seg[seg["recording_id"] == files[0][0].stem]
        reference(files[:1], first, cfg, False)
        ours(files[:1], first, cfg, 1)
        ref_clip, t_clip = timed(reference, files, seg, cfg, True)
        ref_file, t_file = timed(reference, files, seg, cfg, False)
        got, t_ours = timed(ours, files, seg, cfg, args.workers)
    diff = float(np.abs(got.astype(np.float32) - ref_clip).mean())
    print(
        f"{len(files)} files (4 / 44.1 / 48 kHz), {audio_s:.0f} s of audio, {len(seg)} clips"
    )
    for name, t in (
        ("reference, load per clip (authors)", t_clip),
        ("reference, load once per file", t_file),
        (f"ours ({args.workers} workers)", t_ours),
    ):
        print(f"{name:<36} {audio_s / t:8.1f} s audio / s  ({t:.2f} s)")
    print(
        f"mean |difference| of normalised features: {diff:.4f} (the resamplers differ)"
    )
    print(f"ratio ours / per-clip reference (target >= 8x): {t_clip / t_ours:.1f}x")
    print(f"ratio ours / per-file reference: {t_file / t_ours:.1f}x")


if __name__ == "__main__":
    main()

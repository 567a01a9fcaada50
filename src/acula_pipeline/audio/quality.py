"""Per-recording audio-quality statistics and the rules that reject a recording."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

QUALITY_COLUMNS = (
    "peak",
    "rms",
    "clipping_fraction",
    "silence_fraction",
    "dc_offset",
    "nonfinite_count",
)


@dataclass(frozen=True)
class QualityCfg:
    """Thresholds that send a recording to quarantine."""

    min_duration_s: float = 0.5  # shorter recordings are rejected as too short
    silence_dbfs: float = -60.0  # a 20 ms frame below this RMS counts as silent
    clip_level: float = 0.999  # |sample| at or above this counts as clipped
    silent_peak: float = 1e-4  # a recording whose peak is below this is all-silent


def quality_stats(
    wave: np.ndarray, sample_rate: int, cfg: QualityCfg
) -> dict[str, float]:
    """Compute quality statistics of a mono signal at its native rate.

    Args:
        wave: 1-D float signal in [-1, 1].
        sample_rate: Its sample rate.
        cfg: Thresholds (silence level and clipping level).

    Returns:
        A dict with the keys of ``QUALITY_COLUMNS``.
    """
    nonfinite = int(np.size(wave) - np.count_nonzero(np.isfinite(wave)))
    x = np.nan_to_num(wave.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.size == 0:
        return dict.fromkeys(QUALITY_COLUMNS, 0.0) | {"silence_fraction": 1.0}
    frame = max(1, int(0.02 * sample_rate))
    n_frames = max(1, x.size // frame)
    framed = (
        x[: n_frames * frame].reshape(n_frames, -1) if x.size >= frame else x[None, :]
    )
    frame_rms = np.sqrt(np.mean(framed**2, axis=1))
    silent = frame_rms < 10 ** (cfg.silence_dbfs / 20)
    return {
        "peak": float(np.max(np.abs(x))),
        "rms": float(np.sqrt(np.mean(x**2))),
        "clipping_fraction": float(np.mean(np.abs(x) >= cfg.clip_level)),
        "silence_fraction": float(np.mean(silent)),
        "dc_offset": float(np.mean(x)),
        "nonfinite_count": float(nonfinite),
    }


def rejection_reason(
    stats: dict[str, float], duration_s: float, cfg: QualityCfg
) -> str | None:
    """Return why a recording must be quarantined, or ``None`` if it is usable."""
    if duration_s <= 0:
        return "empty recording (0 samples)"
    if stats["nonfinite_count"] > 0:
        return f"{int(stats['nonfinite_count'])} non-finite samples (NaN or inf)"
    if duration_s < cfg.min_duration_s:
        return f"too short: {duration_s:.3f} s < min_duration_s {cfg.min_duration_s} s"
    if stats["peak"] < cfg.silent_peak:
        return f"all-silent: peak {stats['peak']:.2e} < {cfg.silent_peak:.0e}"
    return None

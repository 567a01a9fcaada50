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
    # A float file whose peak is above this was not scaled to [-1, 1] (integer
    # formats cannot exceed 1): quarantined, not clipped or rescaled silently.
    max_peak: float = 2.0


class QualityAccumulator:
    """Quality statistics of a mono signal fed in blocks, in memory bounded by the
    block: sums, counts and extremes, and the RMS of each complete 20 ms frame."""

    def __init__(self, sample_rate: int, cfg: QualityCfg) -> None:
        self.cfg = cfg
        self.frame = max(1, int(0.02 * sample_rate))
        self.n = 0
        self.nonfinite = 0
        self.peak = 0.0
        self.sum = 0.0
        self.sumsq = 0.0
        self.clipped = 0
        self.frames = 0
        self.silent = 0
        self._rest = np.zeros(0)  # samples of an incomplete frame, carried over
        self._level = 10 ** (cfg.silence_dbfs / 20)

    def add(self, block: np.ndarray) -> None:
        """Take the next samples of the signal."""
        self.nonfinite += int(np.size(block) - np.count_nonzero(np.isfinite(block)))
        x = np.nan_to_num(
            np.asarray(block, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0
        )
        if x.size == 0:
            return
        self.n += x.size
        ax = np.abs(x)
        self.peak = max(self.peak, float(ax.max()))
        self.sum += float(x.sum())
        self.sumsq += float(np.dot(x, x))
        self.clipped += int(np.count_nonzero(ax >= self.cfg.clip_level))
        x = np.concatenate([self._rest, x])
        whole = x.size // self.frame * self.frame
        if whole:
            rms = np.sqrt(np.mean(x[:whole].reshape(-1, self.frame) ** 2, axis=1))
            self.frames += rms.size
            self.silent += int(np.count_nonzero(rms < self._level))
        self._rest = x[whole:]

    def stats(self) -> dict[str, float]:
        """The statistics so far, with the keys of ``QUALITY_COLUMNS``."""
        if self.n == 0:
            return dict.fromkeys(QUALITY_COLUMNS, 0.0) | {
                "silence_fraction": 1.0,
                "nonfinite_count": float(self.nonfinite),
            }
        if self.frames:
            silence = self.silent / self.frames
        else:  # shorter than one frame: the whole signal is the frame
            silence = float(np.sqrt(np.mean(self._rest**2)) < self._level)
        return {
            "peak": self.peak,
            "rms": float(np.sqrt(self.sumsq / self.n)),
            "clipping_fraction": self.clipped / self.n,
            "silence_fraction": float(silence),
            "dc_offset": self.sum / self.n,
            "nonfinite_count": float(self.nonfinite),
        }


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
    acc = QualityAccumulator(sample_rate, cfg)
    acc.add(wave)
    return acc.stats()


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
    if stats["peak"] > cfg.max_peak:
        return (
            f"samples far beyond full scale: peak {stats['peak']:.3g} > max_peak "
            f"{cfg.max_peak:g} (a float file not scaled to [-1, 1])"
        )
    return None

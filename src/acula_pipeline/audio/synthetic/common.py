"""Signal building blocks shared by the synthetic heart, lung and cough generators."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import signal


class SyntheticCfg(BaseModel):
    """How the synthetic corpus is generated (``ingest.sources.synthetic`` parameters).

    Difficulty is set by three knobs. ``label_strength`` scales every acoustic effect
    that carries a label (murmur loudness, crackle and wheeze amplitude and count,
    the cough cues of sex, smoking and COVID status); ``noise_snr_db`` is the range
    of background-noise SNR drawn per recording; ``label_noise`` is the fraction of
    subjects whose metadata disagrees with what their audio contains, as annotation
    errors do in real corpora. The defaults aim at benchmark tasks that a good
    encoder solves well but not perfectly (AUROC roughly 0.7 to 0.9).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    subjects: dict[str, int] = Field(
        default_factory=lambda: {"icbhi2017": 32, "circor2022": 32, "coswara": 32}
    )
    label_strength: float = Field(1.0, ge=0.0)
    noise_snr_db: tuple[float, float] = (5.0, 25.0)
    label_noise: float = Field(0.05, ge=0.0, le=1.0)
    empty_recordings: int = Field(1, ge=0)
    workers: int = Field(2, ge=1)


def subject_rng(seed: int, dataset: str, index: int) -> np.random.Generator:
    """A generator that depends only on (seed, dataset, subject index), not on order."""
    tag = sum((i + 1) * ord(c) for i, c in enumerate(dataset))
    return np.random.default_rng([seed, tag, index])


def bandpass(
    x: np.ndarray, lo: float, hi: float, sr: int, order: int = 4
) -> np.ndarray:
    """Butterworth band-pass, clamped to the valid band of ``sr``."""
    nyq = sr / 2
    lo = max(lo, 1.0)
    hi = min(hi, nyq * 0.95)
    if lo >= hi:
        return np.zeros_like(x)
    sos = signal.butter(order, [lo / nyq, hi / nyq], btype="band", output="sos")
    return signal.sosfilt(sos, x)


def coloured_noise(
    n: int, rng: np.random.Generator, exponent: float = 1.0
) -> np.ndarray:
    """Unit-RMS noise with power spectrum ~ 1/f**exponent (1 = pink, 2 = brown)."""
    if n == 0:
        return np.zeros(0)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=float)
    f[0] = 1.0
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal."""
    return float(np.sqrt(np.mean(x**2))) if x.size else 0.0


def add_noise(
    x: np.ndarray, snr_db: float, rng: np.random.Generator, exponent: float
) -> np.ndarray:
    """Add coloured background noise at the given SNR relative to the signal."""
    noise = coloured_noise(x.size, rng, exponent)
    return x + noise * rms(x) / (10 ** (snr_db / 20))


def device_colouration(
    x: np.ndarray, sr: int, lo: float, hi: float, rng: np.random.Generator
) -> np.ndarray:
    """A device's frequency response: a band-pass with a random resonance and tilt."""
    y = bandpass(x, lo, hi, sr, order=2)
    centre = rng.uniform(lo * 2, min(hi, sr / 2 * 0.9))
    res = bandpass(y, centre * 0.8, centre * 1.25, sr, order=2)
    return y + rng.uniform(0.2, 0.8) * res


def normalise_peak(x: np.ndarray, peak: float) -> np.ndarray:
    """Scale a signal so that its largest absolute sample equals ``peak``."""
    m = np.max(np.abs(x)) if x.size else 0.0
    return x * (peak / m) if m > 0 else x


def envelope(shape: str, n: int) -> np.ndarray:
    """Amplitude envelope of ``n`` samples for a murmur or wheeze shape."""
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.ones(n)
    shapes = {
        "crescendo": 0.15 + 0.85 * t,
        "decrescendo": 1.0 - 0.85 * t,
        "diamond": 1.0 - np.abs(2 * t - 1) * 0.85,
        "plateau": np.ones(n),
    }
    env = shapes[shape.lower()]
    ramp = min(n // 8, 40)
    if ramp > 1:
        env[:ramp] *= np.linspace(0, 1, ramp)
        env[-ramp:] *= np.linspace(1, 0, ramp)
    return env


def place(target: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add ``event`` into ``target`` at sample ``start``, cropping at the end."""
    if start >= target.size or start + event.size <= 0:
        return
    lo = max(start, 0)
    hi = min(start + event.size, target.size)
    target[lo:hi] += event[lo - start : hi - start]

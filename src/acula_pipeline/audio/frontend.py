"""Resampling and the OPERA-GT log-mel frontend (torchaudio), device-agnostic."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torchaudio


@dataclass(frozen=True)
class FrontendCfg:
    """Log-mel settings; the defaults are OPERA-GT's."""

    sample_rate: int = 16000  # Hz every clip is resampled to
    clip_seconds: float = 8.19  # clip length fed to the encoder
    n_mels: int = 64  # mel bands
    f_min: float = 50.0  # lowest mel edge, Hz
    f_max: float = 8000.0  # highest mel edge, Hz
    n_fft: int = 1024  # FFT size in samples
    hop_length: int = 512  # hop in samples
    top_db: float = 80.0  # dynamic range kept below each clip's peak (librosa default)

    @property
    def clip_samples(self) -> int:
        """Samples in one clip at ``sample_rate`` (131,040 for the defaults)."""
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """Frames per clip with centred STFT (256 for the defaults)."""
        return 1 + self.clip_samples // self.hop_length

    def to_dict(self) -> dict:
        """Plain dict, for provenance files."""
        return asdict(self)


@lru_cache(maxsize=16)
def _resampler(orig_sr: int, new_sr: int) -> torchaudio.transforms.Resample:
    # The windowed-sinc kernel is computed once per rate pair, not per file.
    return torchaudio.transforms.Resample(orig_sr, new_sr)


# torchaudio's kernel has max(orig, new) / gcd(orig, new) phases: 44100 → 16000 is
# 441, but an odd rate such as 44101 → 16000 is 44101 phases, 5.6 GB of kernel.
MAX_PHASES = 1000


def _phases(orig_sr: int, new_sr: int) -> int:
    return max(orig_sr, new_sr) // math.gcd(orig_sr, new_sr)


def nearby_rate(orig_sr: int, new_sr: int) -> int:
    """The rate nearest ``orig_sr`` (a multiple of 100, 1000, … Hz) that resamples to
    ``new_sr`` with at most ``MAX_PHASES`` phases."""
    step = 100
    while True:
        near = max(step, round(orig_sr / step) * step)
        if _phases(near, new_sr) <= MAX_PHASES:
            return near
        step *= 10


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample the last dimension of ``wave`` from ``orig_sr`` to ``new_sr``, in
    memory bounded for any pair of rates.

    An odd rate whose exact kernel would be huge (44101 Hz) is first moved to the
    nearest rate that divides well (44100 Hz, 0.002 % away) by linear interpolation,
    then resampled exactly.
    """
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return wave
    if _phases(orig_sr, new_sr) > MAX_PHASES:
        near = nearby_rate(orig_sr, new_sr)
        n = wave.shape[-1]
        m = max(1, round(n * near / orig_sr))
        flat = wave.reshape(-1, 1, n).float()
        wave = torch.nn.functional.interpolate(
            flat, size=m, mode="linear", align_corners=False
        ).reshape(*wave.shape[:-1], m)
        orig_sr = near
        if orig_sr == new_sr:
            return wave
    return _resampler(orig_sr, new_sr).to(wave.device)(wave)


class LogMelFrontend(torch.nn.Module):
    """Waveform clips ``(batch, samples)`` → normalised log-mel ``(batch, frames, n_mels)``.

    Matches OPERA's ``pre_process_audio_mel_t`` (librosa ``melspectrogram`` with
    Slaney mel scale and norm, ``power_to_db(ref=max)``, then per-clip min-max to
    [0, 1]); a constant clip maps to zeros.
    """

    def __init__(self, cfg: FrontendCfg | None = None) -> None:
        super().__init__()
        self.cfg = cfg or FrontendCfg()
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.cfg.sample_rate,
            n_fft=self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            f_min=self.cfg.f_min,
            f_max=self.cfg.f_max,
            n_mels=self.cfg.n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Compute normalised log-mel features for a batch of clips."""
        power = self.mel(wave.float())
        db = 10.0 * torch.log10(power.clamp_min(1e-10))
        peak = db.amax(dim=(-2, -1), keepdim=True)
        db = torch.maximum(db, peak - self.cfg.top_db) - peak
        # After subtracting the peak the maximum is 0, so the range is -min.
        lo = db.amin(dim=(-2, -1), keepdim=True)
        span = -lo
        norm = torch.where(
            span > 0, (db - lo) / span.clamp_min(1e-12), torch.zeros_like(db)
        )
        return norm.transpose(-2, -1)


def fit_clip(wave: np.ndarray, n_samples: int, pad_mode: str = "zeros") -> np.ndarray:
    """Crop or pad a 1-D signal to exactly ``n_samples``.

    Args:
        wave: 1-D signal.
        n_samples: Target length.
        pad_mode: ``zeros`` pads with silence at the end; ``repeat`` tiles the signal.

    Returns:
        The fitted signal (a new array).
    """
    if len(wave) >= n_samples:
        return wave[:n_samples].copy()
    if pad_mode == "repeat" and len(wave) > 0:
        reps = -(-n_samples // len(wave))
        return np.tile(wave, reps)[:n_samples]
    if pad_mode not in ("zeros", "repeat"):
        raise ValueError(f"pad_mode must be 'zeros' or 'repeat', got {pad_mode!r}")
    out = np.zeros(n_samples, dtype=wave.dtype)
    out[: len(wave)] = wave
    return out

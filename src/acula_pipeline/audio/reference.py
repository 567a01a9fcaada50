"""The authors' librosa feature path, kept only as a reference for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from acula_pipeline.audio.frontend import FrontendCfg


def opera_logmel(clip: np.ndarray, cfg: FrontendCfg) -> np.ndarray:
    """OPERA's ``pre_process_audio_mel_t``: librosa mel, ``power_to_db(ref=max)``, min-max.

    Args:
        clip: 1-D signal at ``cfg.sample_rate``.
        cfg: Frontend settings.

    Returns:
        ``(frames, n_mels)`` features in [0, 1].
    """
    import librosa  # Only tests and benchmarks need it; the pipeline does not.

    mel = librosa.feature.melspectrogram(
        y=clip,
        sr=cfg.sample_rate,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
    )
    db = librosa.power_to_db(mel, ref=np.max)
    return ((db - db.min()) / (db.max() - db.min())).T

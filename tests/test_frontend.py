"""The log-mel frontend against librosa (OPERA's reference implementation), and clip fitting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acula_pipeline.audio.frontend import (
    FrontendCfg,
    LogMelFrontend,
    fit_clip,
    resample,
)
from acula_pipeline.audio.reference import opera_logmel


def test_shape_is_opera_gt():
    cfg = FrontendCfg()
    assert cfg.clip_samples == 131040 and cfg.n_frames == 256
    out = LogMelFrontend(cfg)(torch.zeros(2, cfg.clip_samples).uniform_(-0.1, 0.1))
    assert out.shape == (2, 256, 64)


def test_matches_librosa_reference():
    cfg = FrontendCfg()
    rng = np.random.default_rng(0)
    t = np.arange(cfg.clip_samples) / cfg.sample_rate
    audio = (
        0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(t.size)
    ).astype(np.float32)
    ours = LogMelFrontend(cfg)(torch.from_numpy(audio)[None])[0].numpy()
    ref = opera_logmel(audio, cfg)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 2e-3


def test_constant_clip_is_finite_zeros():
    out = LogMelFrontend()(torch.zeros(1, FrontendCfg().clip_samples))
    assert torch.isfinite(out).all() and (out == 0).all()


def test_batch_equals_single_items():
    fe = LogMelFrontend()
    x = torch.randn(3, FrontendCfg().clip_samples) * 0.1
    batch = fe(x)
    for i in range(3):
        assert torch.allclose(batch[i], fe(x[i : i + 1])[0], atol=1e-5)


def test_resample_preserves_a_tone():
    sr, new = 44100, 16000
    t = np.arange(sr) / sr
    y = resample(
        torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32)), sr, new
    ).numpy()
    assert y.shape == (new,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == pytest.approx(1000, abs=2)


def test_fit_clip():
    x = np.arange(5, dtype=np.float32)
    assert fit_clip(x, 3).tolist() == [0, 1, 2]
    assert fit_clip(x, 7).tolist() == [0, 1, 2, 3, 4, 0, 0]
    assert fit_clip(x, 7, "repeat").tolist() == [0, 1, 2, 3, 4, 0, 1]
    with pytest.raises(ValueError, match="pad_mode"):
        fit_clip(x, 7, "mirror")

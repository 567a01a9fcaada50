"""Reading audio: good files, and bad ones rejected with the file named."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from acula_pipeline.audio.io import AudioReadError, audio_info, read_audio, to_mono


@pytest.fixture()
def wav(tmp_path):
    path = tmp_path / "tone.wav"
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 4000)
    sf.write(path, x, 4000, subtype="PCM_16")
    return path


def test_read_and_excerpt(wav):
    info = audio_info(wav)
    assert (info.sample_rate, info.channels, info.frames) == (4000, 1, 8000)
    assert info.duration_s == pytest.approx(2.0)
    data, sr = read_audio(wav, start_s=0.5, stop_s=1.0)
    assert sr == 4000 and data.shape == (2000, 1) and data.dtype == np.float32


def test_truncated_wav_is_rejected(wav):
    raw = wav.read_bytes()
    wav.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AudioReadError, match=r"tone\.wav: truncated WAV"):
        audio_info(wav)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all", b"RIFF\x00\x00"])
def test_unreadable_files_name_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioReadError, match=r"bad\.wav: unreadable audio"):
        read_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioReadError, match="missing.wav"):
        audio_info(tmp_path / "missing.wav")


def test_to_mono_averages_channels():
    x = np.stack([np.ones(4), -np.ones(4) * 0.5], axis=1).astype(np.float32)
    assert np.allclose(to_mono(x), 0.25)
    assert to_mono(x[:, :1]).shape == (4,)

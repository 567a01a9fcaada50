"""Reading audio with soundfile, with errors that name the file and what was wrong."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# A data chunk size of 0xFFFFFFFF (or 0) is written by streaming recorders that
# never patched the header: the length is unknown, not truncated.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


class AudioReadError(ValueError):
    """An audio file could not be read; the message names the file and the cause."""


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of one audio file."""

    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration_s(self) -> float:
        """Duration in seconds (0 for an empty file)."""
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def check_wav_complete(path: str | Path) -> None:
    """Raise ``AudioReadError`` if a RIFF/WAVE file holds less data than its header says.

    libsndfile reads a truncated WAV silently (it returns the frames that are there),
    so a download cut short would otherwise pass as a shorter recording.

    Args:
        path: File to check; files that are not RIFF/WAVE are left to libsndfile.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            fh.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", fh.read(8))
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size not in _UNKNOWN_SIZES and available < chunk_size:
                    raise AudioReadError(
                        f"{path}: truncated WAV: header declares {chunk_size} bytes of "
                        f"audio, the file holds {available}"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def audio_info(path: str | Path) -> AudioInfo:
    """Read the header of an audio file.

    Args:
        path: Audio file.

    Returns:
        Sample rate, channels, frames and sample format.

    Raises:
        AudioReadError: The file is missing, not audio, or truncated.
    """
    try:
        check_wav_complete(path)
        info = sf.info(str(path))
    except AudioReadError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: unreadable audio ({exc})") from exc
    return AudioInfo(
        int(info.samplerate), int(info.channels), int(info.frames), info.subtype
    )


def read_audio(
    path: str | Path, start_s: float = 0.0, stop_s: float | None = None
) -> tuple[np.ndarray, int]:
    """Read (part of) an audio file as float32 samples of shape ``(frames, channels)``.

    Args:
        path: Audio file.
        start_s: Start of the excerpt in seconds.
        stop_s: End of the excerpt in seconds; ``None`` reads to the end.

    Returns:
        The samples in [-1, 1] and the native sample rate.

    Raises:
        AudioReadError: The file is missing, not audio, or truncated.
    """
    info = audio_info(path)
    start = int(round(start_s * info.sample_rate))
    stop = None if stop_s is None else int(round(stop_s * info.sample_rate))
    try:
        data, sr = sf.read(
            str(path), start=start, stop=stop, dtype="float32", always_2d=True
        )
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: unreadable audio ({exc})") from exc
    return data, int(sr)


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels of a ``(frames, channels)`` array into a 1-D signal."""
    if samples.ndim == 1:
        return samples
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]


def write_audio(
    path: str | Path, samples: np.ndarray, sample_rate: int, subtype: str
) -> None:
    """Write samples in [-1, 1] to a WAV file with the given PCM subtype."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(samples, -1.0, 1.0), sample_rate, subtype=subtype)

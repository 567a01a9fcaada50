"""Reading audio with soundfile, with errors that name the file and what was wrong.

WAV, FLAC and Ogg (Vorbis, Opus) go through libsndfile. Browser and container formats
libsndfile cannot read (WebM from CoughVID, MP4/M4A) are decoded with PyAV, whose
wheels bundle FFmpeg; without PyAV the error names the file and a conversion command.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

# A data chunk size of 0xFFFFFFFF (or 0) is written by streaming recorders that
# never patched the header: the length is unknown, not truncated.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
# Decoded with PyAV (FFmpeg); everything else with libsndfile.
PYAV_SUFFIXES = frozenset({".webm", ".mp4", ".m4a", ".aac", ".mkv"})


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
    if Path(path).suffix.lower() in PYAV_SUFFIXES:
        samples, sr = _decode_pyav(path)
        return AudioInfo(sr, samples.shape[1], samples.shape[0], "PYAV")
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
    if Path(path).suffix.lower() in PYAV_SUFFIXES:
        samples, sr = _decode_pyav(path)
        start, stop_i = int(round(start_s * sr)), None
        if stop_s is not None:
            stop_i = int(round(stop_s * sr))
        return samples[start:stop_i], sr
    info = audio_info(path)
    start = int(round(start_s * info.sample_rate))
    stop = None if stop_s is None else int(round(stop_s * info.sample_rate))
    return _read_sf(path, start, stop)


def read_frames(path: str | Path, start: int, stop: int) -> tuple[np.ndarray, int]:
    """Frames ``start``–``stop`` of a libsndfile-readable file, float32
    ``(frames, channels)``, and its sample rate.

    Raises:
        AudioReadError: The file is missing, not audio, or truncated.
    """
    audio_info(path)  # names a missing, non-audio or truncated file
    return _read_sf(path, start, stop)


def _read_sf(path: str | Path, start: int, stop: int | None) -> tuple[np.ndarray, int]:
    try:
        data, sr = sf.read(
            str(path), start=start, stop=stop, dtype="float32", always_2d=True
        )
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioReadError(f"{path}: unreadable audio ({exc})") from exc
    return data, int(sr)


def read_blocks(
    path: str | Path, block_frames: int = 1 << 18
) -> tuple[int, Iterator[np.ndarray]]:
    """A whole file as consecutive mono float32 blocks, never all of it at once
    (a WebM/MP4 file is decoded whole first: PyAV gives no frame count).

    Returns:
        The sample rate and an iterator of 1-D blocks of at most ``block_frames``.

    Raises:
        AudioReadError: The file is missing, not audio, or truncated (also while
            iterating).
    """
    if Path(path).suffix.lower() in PYAV_SUFFIXES:
        samples, sr = _decode_pyav(path)
        mono = to_mono(samples)
        return sr, (
            mono[i : i + block_frames] for i in range(0, mono.size, block_frames)
        )
    info = audio_info(path)

    def blocks() -> Iterator[np.ndarray]:
        try:
            for b in sf.blocks(
                str(path), blocksize=block_frames, dtype="float32", always_2d=True
            ):
                yield to_mono(b)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioReadError(f"{path}: unreadable audio ({exc})") from exc

    return info.sample_rate, blocks()


def _decode_pyav(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole WebM/MP4-family file with PyAV: ``(frames, channels)`` float32.

    The whole stream is decoded: browser recordings often carry no duration in the
    header, so counting frames is the only reliable length.

    Raises:
        AudioReadError: PyAV is missing, the file has no audio stream, or FFmpeg
            cannot decode it.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: unreadable audio (no such file)")
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a pinned dependency
        raise AudioReadError(
            f"{path}: {path.suffix} audio needs PyAV to decode (pip install av), or "
            f"convert it first: ffmpeg -i '{path}' '{path.with_suffix('.wav')}'"
        ) from exc
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioReadError(f"{path}: no audio stream in the file")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            resampler = av.AudioResampler(format="fltp", layout=stream.layout)
            chunks = [
                out.to_ndarray()
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            chunks += [out.to_ndarray() for out in resampler.resample(None)]
    except AudioReadError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise AudioReadError(f"{path}: unreadable audio ({exc})") from exc
    if rate <= 0:
        raise AudioReadError(f"{path}: the audio stream declares no sample rate")
    channels = max(len(stream.layout.channels), 1)
    data = (
        np.concatenate(chunks, axis=1)
        if chunks
        else np.zeros((channels, 0), np.float32)
    )
    return np.ascontiguousarray(data.T, dtype=np.float32), rate


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

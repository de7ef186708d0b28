"""Read audio files into float tensors, with one typed error for every way a file can be bad.

Decoding goes through libsndfile (via soundfile), so every format it reads works: WAV, FLAC,
OGG/Vorbis, Opus, MP3, AIFF, AU, ... Resampling uses soxr at "HQ" quality. Only the requested
span of a file is decoded, so reading a window of a long file costs the window, not the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr
import torch

RESAMPLE_QUALITY = "HQ"

_DECODER_ERRORS = (sf.SoundFileError, RuntimeError, OSError)


def _readable_extensions() -> frozenset[str]:
    """File extensions this libsndfile build can decode (MP3 and Opus depend on the build)."""
    extensions = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au"}
    if "MP3" in sf.available_formats():
        extensions.add(".mp3")
    if "OPUS" in sf.available_subtypes("OGG"):
        extensions.add(".opus")
    return frozenset(extensions)


AUDIO_EXTENSIONS: frozenset[str] = _readable_extensions()


class AudioError(Exception):
    """A file that cannot be read as audio; the message names the file and the cause.

    Attributes:
        path: The file, as given by the caller.
        reason: The cause in words, e.g. "file is empty (0 bytes)".
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(str(path), reason)
        self.path = str(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says about it."""

    path: str
    sample_rate: int
    n_frames: int
    n_channels: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_frames / self.sample_rate


def info(path: str | os.PathLike) -> AudioInfo:
    """Read the header of an audio file without decoding it.

    Truncation that only shows when decoding (e.g. a FLAC file cut short) is not detected here;
    `load` detects it.

    Raises:
        AudioError: The file is missing, empty, not audio, or holds zero frames.
    """
    with _open(path) as f:
        return AudioInfo(str(path), f.samplerate, f.frames, f.channels)


def load(
    path: str | os.PathLike,
    sample_rate: int,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Decode a span of an audio file at the given sample rate.

    Only frames [offset, offset + duration) are decoded (seek, then read). Multi-channel audio is
    downmixed to mono by averaging the channels, then resampled with soxr when the file's rate
    differs. A span that runs past the end is clipped to the end.

    A WAV file whose data chunk is cut short loads the frames that are present: libsndfile sizes
    the data chunk from the bytes in the file, and `info` reports that same shorter length.
    Formats whose decoder fails mid-stream (FLAC, MP3, ...) raise AudioError instead.

    Args:
        path: Any file libsndfile reads.
        sample_rate: Output sample rate in Hz.
        mono: Downmix to one channel.
        offset: Start of the span in seconds.
        duration: Length of the span in seconds; None reads to the end.

    Returns:
        Float32 tensor of shape [N] if mono, else [C, N].

    Raises:
        AudioError: The file is missing, empty, not audio, zero-length, truncated or corrupt,
            contains NaN/inf samples, or the span is negative or starts past the end.
    """
    _check_rate(sample_rate)
    _check_span(path, offset, duration)
    with _open(path) as f:
        start, frames = _frame_span(f, path, offset, duration)
        if start > 0:
            _seek(f, path, start)
        audio = _downmix(_read(f, path, frames), mono)
        native_rate = f.samplerate
    return _to_tensor(_resample(audio, native_rate, sample_rate))


def _open(path: str | os.PathLike) -> sf.SoundFile:
    """Open a file for decoding, turning every failure into an AudioError."""
    if not os.path.exists(path):
        raise AudioError(path, "file not found")
    if not os.path.isfile(path):
        raise AudioError(path, "not a regular file")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    try:
        f = sf.SoundFile(path)
    except _DECODER_ERRORS as exc:
        raise AudioError(path, f"not a readable audio file ({_cause(exc)})") from exc
    if f.frames <= 0:
        f.close()
        raise AudioError(path, "contains no audio frames (zero length or truncated)")
    return f


def _read(f: sf.SoundFile, path: str | os.PathLike, frames: int) -> np.ndarray:
    """Decode the next `frames` frames as float32 of shape [frames, C], or raise AudioError."""
    try:
        audio = f.read(frames, dtype="float32", always_2d=True)
    except _DECODER_ERRORS as exc:
        reason = f"decoding failed, file is truncated or corrupt ({_cause(exc)})"
        raise AudioError(path, reason) from exc
    if len(audio) < frames:
        raise AudioError(path, f"file is truncated: decoded {len(audio)} of {frames} frames")
    if not np.isfinite(audio).all():
        raise AudioError(path, "contains NaN or infinite samples")
    return audio


def _seek(f: sf.SoundFile, path: str | os.PathLike, frame: int) -> None:
    """Move the decoder to `frame`; a failing seek means the stream is damaged."""
    try:
        f.seek(frame)
    except _DECODER_ERRORS as exc:
        reason = f"cannot seek to frame {frame}, file is truncated or corrupt ({_cause(exc)})"
        raise AudioError(path, reason) from exc


def _cause(exc: BaseException) -> str:
    """The libsndfile message of an exception, without soundfile's "Error opening ..." prefix."""
    text = getattr(exc, "error_string", "") or str(exc) or type(exc).__name__
    return text.strip().removeprefix("Error : ").rstrip(".")


def _check_rate(sample_rate: int) -> None:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")


def _check_span(path: str | os.PathLike, offset: float, duration: float | None) -> None:
    if offset < 0:
        raise AudioError(path, f"negative offset {offset} s")
    if duration is not None and duration < 0:
        raise AudioError(path, f"negative duration {duration} s")


def _frame_span(
    f: sf.SoundFile, path: str | os.PathLike, offset: float, duration: float | None
) -> tuple[int, int]:
    """First frame and frame count of [offset, offset + duration), clipped to the file."""
    start = round(offset * f.samplerate)
    if start >= f.frames:
        length = f.frames / f.samplerate
        raise AudioError(path, f"offset {offset} s is beyond the end ({length:.3f} s)")
    remaining = f.frames - start
    if duration is None:
        return start, remaining
    return start, min(round(duration * f.samplerate), remaining)


def _downmix(audio: np.ndarray, mono: bool) -> np.ndarray:
    """[N, C] -> [N] channel mean if mono, else unchanged."""
    return audio.mean(axis=1, dtype=np.float32) if mono else audio


def _resample(audio: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """Resample [N] or [N, C] float32 audio along its first axis."""
    if in_rate == out_rate:
        return audio
    return soxr.resample(audio, in_rate, out_rate, quality=RESAMPLE_QUALITY)


def _to_tensor(audio: np.ndarray) -> torch.Tensor:
    """[N] -> [N]; [N, C] -> [C, N] (contiguous)."""
    return torch.from_numpy(np.ascontiguousarray(audio.T))

"""Read audio files into float tensors, with one typed error for every way a file can be bad.

Decoding goes through libsndfile (via soundfile), so every format it reads works: WAV, FLAC,
OGG/Vorbis, Opus, MP3, AIFF, AU, ... Resampling uses soxr at "HQ" quality. Only the requested
span of a file is decoded, so reading a window of a long file costs the window, not the file.

A file cut short (a partial download, a full disk) is an error, not a shorter song: `info` and
`load` check the container against what the file holds (`integrity.find_truncation`), and
`allow_truncated=True` reads what decodes instead, with one warning per file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch

from .integrity import Truncation, find_truncation

log = logging.getLogger(__name__)

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


def audio_files(folder: str | os.PathLike) -> list[Path]:
    """Every file below `folder` (recursively) with an extension in AUDIO_EXTENSIONS, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


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


def info(path: str | os.PathLike, allow_truncated: bool = False) -> AudioInfo:
    """Read the header of an audio file, and a few KB from its end, without decoding it.

    Args:
        path: Any file libsndfile reads.
        allow_truncated: Accept a file cut short, with a warning, and report the frames present
            (estimated for MP3) instead of raising.

    Raises:
        AudioError: The file is missing, empty, not audio, holds zero frames, or is truncated
            (its container declares more audio than the file holds). Truncation that only shows
            when decoding (an MP3 without a Xing/Info header) is left to `load`.
    """
    with _open(path) as f:
        return AudioInfo(str(path), f.samplerate, _checked_frames(f, path, allow_truncated), f.channels)


def load(
    path: str | os.PathLike,
    sample_rate: int,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    allow_truncated: bool = False,
) -> torch.Tensor:
    """Decode a span of an audio file at the given sample rate.

    Only frames [offset, offset + duration) are decoded (seek, then read). Multi-channel audio is
    downmixed to mono by averaging the channels, then resampled with soxr when the file's rate
    differs. A span that runs past the end is clipped to the end.

    A truncated file raises AudioError, whether its container shows it (see `info`) or its
    decoder stops early. With `allow_truncated` the span is clipped to the audio that decodes,
    and the file is named in a warning (once per process).

    Args:
        path: Any file libsndfile reads.
        sample_rate: Output sample rate in Hz.
        mono: Downmix to one channel.
        offset: Start of the span in seconds.
        duration: Length of the span in seconds; None reads to the end.
        allow_truncated: Read what decodes of a file cut short instead of raising.

    Returns:
        Float32 tensor of shape [N] if mono, else [C, N].

    Raises:
        AudioError: The file is missing, empty, not audio, zero-length, truncated or corrupt,
            contains NaN/inf samples, or the span is negative or starts past the end.
    """
    _check_rate(sample_rate)
    _check_span(path, offset, duration)
    with _open(path) as f:
        n_frames = _checked_frames(f, path, allow_truncated)
        start, frames = _frame_span(f.samplerate, n_frames, path, offset, duration)
        if start > 0:
            _seek(f, path, start)
        audio = _read(f, path, frames, allow_truncated)
        if len(audio) == 0:
            raise AudioError(path, f"file is truncated: no audio decodes from frame {start} on")
        audio = _downmix(audio, mono)
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
        try:
            truncation = _find_truncation(f, path)
        finally:
            f.close()
        reason = truncation.reason if truncation else "contains no audio frames (zero length or truncated)"
        raise AudioError(path, reason)
    return f


# Files already named in a truncation warning: a training run loads many crops of each.
_warned: set[str] = set()


def _checked_frames(f: sf.SoundFile, path: str | os.PathLike, allow_truncated: bool) -> int:
    """Frames of an open file: libsndfile's count, if the container shows the file complete.

    A truncated file raises AudioError, or with `allow_truncated` gives the frames present.
    """
    truncation = _find_truncation(f, path)
    if truncation is None:
        return f.frames
    if not allow_truncated:
        raise AudioError(path, truncation.reason)
    _warn_truncated(path, truncation.reason)
    n_frames = f.frames if truncation.n_frames is None else min(f.frames, truncation.n_frames)
    if n_frames <= 0:
        raise AudioError(path, f"no audio frames to read ({truncation.reason})")
    return n_frames


def _find_truncation(f: sf.SoundFile, path: str | os.PathLike) -> Truncation | None:
    """`integrity.find_truncation` for an open file; a read error is an AudioError."""
    try:
        return find_truncation(path, f.format, f.frames, f.samplerate)
    except OSError as exc:
        raise AudioError(path, f"cannot read the file ({exc.strerror or exc})") from exc


def _warn_truncated(path: str | os.PathLike, reason: str) -> None:
    """Log that a truncated file is read as far as it decodes, once per file and process."""
    if str(path) not in _warned:
        _warned.add(str(path))
        log.warning("%s: %s; reading the audio that decodes (truncated files allowed)", path, reason)


def _read(
    f: sf.SoundFile, path: str | os.PathLike, frames: int, allow_truncated: bool = False
) -> np.ndarray:
    """Decode the next `frames` frames as float32 of shape [frames, C], or raise AudioError.

    With `allow_truncated`, a decoder that stops early gives the frames before the stop.
    """
    if allow_truncated:
        audio = _read_what_decodes(f, path, frames)
        if len(audio) < frames:
            _warn_truncated(path, f"file is truncated: decoded {len(audio)} of {frames} frames")
        return audio
    try:
        audio = f.read(frames, dtype="float32", always_2d=True)
    except _DECODER_ERRORS as exc:
        reason = f"decoding failed, file is truncated or corrupt ({_cause(exc)})"
        raise AudioError(path, reason) from exc
    if len(audio) < frames:
        raise AudioError(path, f"file is truncated: decoded {len(audio)} of {frames} frames")
    return _check_finite(audio, path)


def _read_what_decodes(f: sf.SoundFile, path: str | os.PathLike, frames: int) -> np.ndarray:
    """Up to `frames` frames, [n, C]: those before the end or a decoder error, whichever is first."""
    out = np.full((frames, f.channels), np.nan, dtype=np.float32)
    try:
        audio = f.read(frames, dtype="float32", always_2d=True, out=out)
    except _DECODER_ERRORS:
        # libsndfile fails the whole call (e.g. "flac decoder lost sync" at the cut) after
        # filling `out` up to the failure; rows it did not reach are still NaN.
        finite = np.isfinite(out).all(axis=1)
        audio = out[: len(out) if finite.all() else int(np.argmin(finite))]
    return _check_finite(audio, path)


def _check_finite(audio: np.ndarray, path: str | os.PathLike) -> np.ndarray:
    """`audio` unchanged, or AudioError if it holds NaN or infinite samples."""
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
    sample_rate: int, n_frames: int, path: str | os.PathLike, offset: float, duration: float | None
) -> tuple[int, int]:
    """First frame and frame count of [offset, offset + duration), clipped to the file."""
    start = round(offset * sample_rate)
    if start >= n_frames:
        length = n_frames / sample_rate
        raise AudioError(path, f"offset {offset} s is beyond the end ({length:.3f} s)")
    remaining = n_frames - start
    if duration is None:
        return start, remaining
    return start, min(round(duration * sample_rate), remaining)


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

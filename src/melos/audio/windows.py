"""Cut an audio file into fixed windows while decoding it once, front to back.

A long track is decoded block by block, resampled with a streaming soxr resampler (whose output
equals resampling the whole file at once, so window borders carry no edge artefacts), and each
window is yielded as soon as its last sample has arrived. Memory stays about one window plus one
block, whatever the length of the file.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr
import torch

from .io import RESAMPLE_QUALITY, _check_rate, _checked_frames, _downmix, _open, _read, _to_tensor

# Durations closer than this (in seconds) are equal: below one sample period at any audio rate
# (5.2 us at 192 kHz), so it only absorbs float round-off such as 0.1 * 3 != 0.3.
_EPS = 1e-6


def window_starts(duration: float, window: float, hop: float) -> list[float]:
    """Start times of the fewest fixed windows that cover `duration` seconds.

    Windows start at 0, hop, 2 * hop, ... and window k spans
    [k * hop, min(k * hop + window, duration)], so only the last one may be shorter::

        duration = 65, window = 30, hop = 30     duration = 70, window = 30, hop = 20
        |<------------- 65 ------------->|       |<--------------- 70 --------------->|
        [0 ---------- 30)                        [0 ---------- 30)
                      [30 --------- 60)                [20 --------- 50)
                                    [60 65]                    [40 ------------ 70]

    The count is 1 if duration <= window, else ceil((duration - window) / hop) + 1. With
    hop > window the gaps between windows are skipped on purpose, and a window that would start
    at or past the end is dropped. Differences below 1 us count as float round-off, so
    duration = 60.0000001 with window = hop = 30 gives [0, 30], not a third empty window.

    Args:
        duration: Length of the audio in seconds.
        window: Window length in seconds.
        hop: Distance between window starts in seconds; < window overlaps, > window leaves gaps.

    Returns:
        Start times in seconds, increasing, the first one 0.
    """
    _check_positive(duration=duration, window=window, hop=hop)
    return [k * hop for k in range(_window_count(duration, window, hop))]


def _check_positive(**sizes: float) -> None:
    """Raise ValueError naming the first size that is not > 0 (NaN included)."""
    for name, value in sizes.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _window_count(duration: float, window: float, hop: float) -> int:
    """Fewest windows that reach the end, none starting at or past it (matters if hop > window)."""
    covering = 1
    if duration > window + _EPS:
        covering = math.ceil((duration - window - _EPS) / hop) + 1
    starting_inside = math.ceil((duration - _EPS) / hop)
    return max(1, min(covering, starting_inside))


@dataclass
class AudioWindow:
    """One window of a file.

    Attributes:
        start: Start time in seconds, as given by `window_starts`.
        audio: Float32 tensor of shape [N] (mono) or [C, N].
        index: Position of the window in the file, from 0.
    """

    start: float
    audio: torch.Tensor
    index: int


def iter_windows(
    path: str | os.PathLike,
    sample_rate: int,
    window: float = 30.0,
    hop: float | None = None,
    mono: bool = True,
    block_seconds: float = 5.0,
    allow_truncated: bool = False,
) -> Iterator[AudioWindow]:
    """Decode a file once and yield its windows at `sample_rate` as soon as each is complete.

    Window starts are `window_starts(info(path, allow_truncated).duration, window, hop)`. At the
    target rate, the window starting at t spans samples [round(t * sr), round((t + window) * sr)),
    clipped to the end of the file; so with hop == window the windows tile the audio of
    `load(path, sr)` exactly, and every window equals the same slice of it. A last window shorter
    than one target-rate sample is dropped.

    Args:
        path: Any file libsndfile reads.
        sample_rate: Output sample rate in Hz.
        window: Window length in seconds.
        hop: Distance between window starts in seconds; defaults to `window`.
        mono: Downmix to one channel (channel mean).
        block_seconds: Seconds of audio decoded per read; memory is about window + block.
        allow_truncated: Yield the windows of what decodes of a file cut short instead of
            raising (see `load`); windows past the point where decoding stops are not yielded.

    Yields:
        AudioWindow, in order of start time.

    Raises:
        AudioError: As `load`: missing, empty, not audio, zero-length, truncated or corrupt file,
            or NaN/inf samples (checked per block, so some windows may come out before it).
        ValueError: A non-positive window, hop, block_seconds or sample_rate; raised by the
            call itself, while file errors come from iterating.
    """
    hop = window if hop is None else hop
    _check_rate(sample_rate)
    _check_positive(window=window, hop=hop, block_seconds=block_seconds)
    return _windows(path, sample_rate, window, hop, mono, block_seconds, allow_truncated)


def _windows(
    path: str | os.PathLike,
    sample_rate: int,
    window: float,
    hop: float,
    mono: bool,
    block_seconds: float,
    allow_truncated: bool,
) -> Iterator[AudioWindow]:
    """The generator behind `iter_windows`; the file is opened on the first `next`."""
    with _open(path) as f:
        n_frames = _checked_frames(f, path, allow_truncated)
        starts = window_starts(n_frames / f.samplerate, window, hop)
        spans = [(round(t * sample_rate), round((t + window) * sample_rate)) for t in starts]
        blocks = _resampled_blocks(f, path, n_frames, sample_rate, mono, block_seconds, allow_truncated)
        for index, audio in enumerate(_cut(blocks, spans)):
            yield AudioWindow(starts[index], _to_tensor(audio), index)


def _resampled_blocks(
    f: sf.SoundFile,
    path: str | os.PathLike,
    n_frames: int,
    sample_rate: int,
    mono: bool,
    block_seconds: float,
    allow_truncated: bool,
) -> Iterator[np.ndarray]:
    """Decode `n_frames` frames in order; yield them downmixed and resampled, [n] or [n, C].

    A short read (only with `allow_truncated`) ends the stream early.
    """
    block_frames = max(1, round(block_seconds * f.samplerate))
    stream = None
    if f.samplerate != sample_rate:
        channels = 1 if mono else f.channels
        stream = soxr.ResampleStream(
            f.samplerate, sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY
        )
    remaining = n_frames
    while remaining > 0:
        frames = min(block_frames, remaining)
        decoded = _read(f, path, frames, allow_truncated)
        remaining = remaining - frames if len(decoded) == frames else 0
        block = _downmix(decoded, mono)
        yield block if stream is None else stream.resample_chunk(block, last=remaining == 0)


def _cut(blocks: Iterable[np.ndarray], spans: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """Yield audio[begin:stop] for each (begin, stop) span, holding only what is still needed."""
    pending = deque(spans)
    buffer = _Buffer()
    for block in blocks:
        buffer.push(block)
        while pending and pending[0][1] <= buffer.end:
            yield buffer.take(*pending.popleft())
            buffer.drop_before(pending[0][0] if pending else buffer.end)
    for begin, stop in pending:
        if begin < buffer.end:
            yield buffer.take(begin, min(stop, buffer.end))


class _Buffer:
    """The resampled stream's samples [start, end), in absolute sample indices.

    `start` may run ahead of `end` (a gap between windows when hop > window); the samples of the
    gap are then dropped as they arrive.
    """

    def __init__(self) -> None:
        self.start = 0
        self.end = 0
        self._parts: list[np.ndarray] = []

    def push(self, part: np.ndarray) -> None:
        """Append the next samples of the stream, skipping any that fall before `start`."""
        skip = max(0, self.start - self.end)
        self.end += len(part)
        if skip < len(part):
            self._parts.append(part[skip:])

    def take(self, begin: int, stop: int) -> np.ndarray:
        """A copy of samples [begin, stop), absolute indices with start <= begin, stop <= end."""
        data = self._merged()
        return data[begin - self.start : stop - self.start].copy()

    def drop_before(self, index: int) -> None:
        """Forget the samples before `index`, which may lie beyond `end`."""
        if self._parts:
            self._parts = [self._merged()[max(0, index - self.start) :]]
        self.start = index

    def _merged(self) -> np.ndarray:
        if len(self._parts) > 1:
            self._parts = [np.concatenate(self._parts)]
        return self._parts[0]

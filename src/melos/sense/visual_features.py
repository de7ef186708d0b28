"""What the SENSE video's audio-reactive panel shows: one value per video frame.

Video frame k covers the time [k / fps, (k + 1) / fps) and shows the state of that interval, so a
beat at time b lights frame floor(b * fps), the frame on screen when it sounds:

    audio -> zero-phase band-pass (bass, mid, treble) -> mean square over each frame's samples
          -> / its mean over the last AVERAGE_SECONDS (this frame included) -> relative energy
    events (beats, taps) -> an impulse on the frame holding each -> peak hold (instant attack,
                            exponential release) -> pulses that flash on the beat and decay

Relative energy is what music visualisers draw: each band pulses around 1 whatever its absolute
level, so a quiet treble moves as visibly as a loud bass. The average is trailing (causal), so a
band's rise shows on its own frame, and it starts over the frames so far.
"""

from __future__ import annotations

import math

import numpy as np

from .features import band_pass

BANDS = {"bass": (20.0, 250.0), "mid": (250.0, 4000.0), "treble": (4000.0, 16000.0)}  # Hz
AVERAGE_SECONDS = 3.0  # the trailing average each band's energy is divided by
SILENCE = 1e-3  # a band's average below this fraction of the mix's mean energy counts as silent


def n_video_frames(duration: float, fps: float) -> int:
    """Frames needed to cover `duration` seconds: the last one may run past the end."""
    return max(1, math.ceil(duration * fps - 1e-9))


def frame_bounds(n_frames: int, fps: float, sample_rate: int) -> np.ndarray:
    """First sample of each frame and one past the last, [n_frames + 1]: frame k holds samples
    floor(k * sample_rate / fps) up to the next frame's first."""
    return np.floor(np.arange(n_frames + 1) * sample_rate / fps + 1e-9).astype(np.int64)


def band_energy(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int,
                bands: dict[str, tuple[float, float]] = BANDS) -> np.ndarray:
    """Mean square of each band of `audio` over each video frame's samples, [B, n_frames].

    Args:
        audio: mono waveform [N].
        bands: name -> (low, high) Hz; a band's top is cut to 0.45 x the sample rate, and a band
            left empty by that (e.g. treble at 8 kHz) has zero energy.
    Frames past the end of the audio average the samples they hold, or are 0 if they hold none.
    """
    bounds = np.minimum(frame_bounds(n_frames, fps, sample_rate), len(audio))
    counts = np.maximum(np.diff(bounds), 1)
    energy = np.zeros((len(bands), n_frames))
    for i, (low, high) in enumerate(bands.values()):
        high = min(high, 0.45 * sample_rate)
        if high <= low:
            continue
        power = np.concatenate([[0.0], np.cumsum(np.square(band_pass(audio, sample_rate, (low, high))))])
        energy[i] = np.maximum(power[bounds[1:]] - power[bounds[:-1]], 0.0) / counts
    return energy


def relative_energy(energy: np.ndarray, fps: float, seconds: float = AVERAGE_SECONDS,
                    silence: float = SILENCE) -> np.ndarray:
    """Each band's energy over its trailing average, [B, T] from [B, T].

    The average at frame k is the mean of frames max(0, k - n + 1) .. k, n = round(seconds * fps),
    so a steady band reads 1 and one that jumps by x reads x at once, then sinks back to 1 as the
    average catches up. Averages below `silence` x the mean energy of all bands over the whole
    recording are raised to that floor, so a silent band reads ~0, not noise over noise.
    """
    n = max(1, round(seconds * fps))
    total = np.cumsum(energy, axis=1)
    shifted = np.zeros_like(total)
    shifted[:, n:] = total[:, :-n]
    counts = np.minimum(np.arange(1, energy.shape[1] + 1), n)
    average = (total - shifted) / counts
    floor = silence * max(float(energy.sum(axis=0).mean()), 1e-20)
    return energy / np.maximum(average, floor)


def impulses(times: np.ndarray, fps: float, n_frames: int, weights: np.ndarray | None = None) -> np.ndarray:
    """[n_frames]: at each frame the largest weight (default 1) of the events it holds, else 0."""
    times = np.asarray(times, dtype=np.float64)
    weights = np.ones(len(times)) if weights is None else np.asarray(weights, dtype=np.float64)
    frames = np.floor(times * fps + 1e-9).astype(np.int64)
    inside = (frames >= 0) & (frames < n_frames)
    out = np.zeros(n_frames)
    np.maximum.at(out, frames[inside], weights[inside])
    return out


def peak_hold(x: np.ndarray, fps: float, release: float) -> np.ndarray:
    """y[k] = max(x[k], y[k - 1] * exp(-1 / (release * fps))): instant attack, and a release
    that falls to 1/e in `release` seconds (a meter's ballistics; an impulse becomes a decaying flash)."""
    decay = math.exp(-1.0 / (release * fps))
    y = np.empty(len(x))
    level = 0.0
    for k, value in enumerate(x):
        level = max(float(value), level * decay)
        y[k] = level
    return y


def frames_since(times: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Frames since the latest event at or before each frame (0 on the frame holding it), [n_frames];
    a large number (n_frames + 1) before the first event."""
    marks = impulses(times, fps, n_frames) > 0
    last = np.where(marks, np.arange(n_frames), -1)
    last = np.maximum.accumulate(last)
    return np.where(last >= 0, np.arange(n_frames) - last, n_frames + 1)


def at_frames(times: np.ndarray, values: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """A curve sampled at `times` read at each frame's middle ((k + 0.5) / fps), [n_frames]."""
    return np.interp((np.arange(n_frames) + 0.5) / fps, times, values)


def smooth(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    """Causal one-pole smoothing with time constant `seconds`, so colours drift instead of flicker."""
    alpha = 1.0 - math.exp(-1.0 / (seconds * fps))
    y = np.empty(len(x))
    level = float(x[0]) if len(x) else 0.0
    for k, value in enumerate(x):
        level += alpha * (float(value) - level)
        y[k] = level
    return y

"""Audio-rate drive signal for voice-coil actuators, and its 8 kHz mono WAV.

A voice-coil actuator moves most at its resonance, so the drive is one carrier there (150-250 Hz,
170 by default) whose amplitude follows the track:

    continuous   the amplitude envelope (the mapping fills it from a 10-20 ms RMS of the low band)
    transients   10-20 ms bursts of the carrier peaking at the transient's amplitude: 1 ms linear
                 attack, raised-cosine decay (a gated carrier would splatter energy outside 40-400 Hz)

Both are physical drive amplitudes on one scale (melos.sense.track), written as they are: the
carrier's envelope is the amplitude, with no perceptual mapping (the actuator is driven, not told).

Where a burst and the bed overlap the louder one wins, so the bed ducks under a transient and
the peak never exceeds 1. The same signal at the audio's rate is the haptic channel of Android's
audio-coupled Ogg files (`android.write_haptic_ogg`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.fft
import soundfile as sf

from ...utils.atomic import atomic_file
from ..track import HapticTrack

DRIVE_RATE = 8000  # Hz, of the drive WAV
BAND_HZ = (40.0, 400.0)  # where a voice-coil actuator responds
MIN_BAND_SHARE = 0.9  # of the signal's energy inside BAND_HZ
CARRIER_RANGE_HZ = (150.0, 250.0)  # actuator resonances we drive
BURST_RANGE_S = (0.01, 0.02)  # a transient burst: long enough to feel, short enough not to buzz
ATTACK_S = 0.001


def _burst(sample_rate: int, burst_s: float) -> np.ndarray:
    """Unit burst envelope [L]: linear attack, raised-cosine decay to 0."""
    n = max(2, round(burst_s * sample_rate))
    n_attack = min(n - 1, max(1, round(ATTACK_S * sample_rate)))
    attack = np.arange(1, n_attack + 1) / n_attack
    decay = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n - n_attack + 1) / (n - n_attack))
    return np.concatenate([attack, decay])


def render_drive(track: HapticTrack, sample_rate: int, carrier_hz: float = 170.0,
                 burst_s: float = 0.015) -> np.ndarray:
    """The drive signal [N] (float32, N = duration * sample_rate) of `track` at `sample_rate`.

    Args:
        carrier_hz: actuator resonance, 150-250 Hz; ValueError outside.
        burst_s: length of a transient's burst, 10-20 ms."""
    track.check()
    lo, hi = CARRIER_RANGE_HZ
    if not lo <= carrier_hz <= hi:
        raise ValueError(f"carrier_hz {carrier_hz}: must be inside {lo:g}-{hi:g} Hz (the actuator's resonance)")
    if not BURST_RANGE_S[0] <= burst_s <= BURST_RANGE_S[1]:
        raise ValueError(f"burst_s {burst_s}: must be inside {BURST_RANGE_S[0]:g}-{BURST_RANGE_S[1]:g} s")
    if sample_rate < 2 * BAND_HZ[1]:
        raise ValueError(f"sample_rate {sample_rate}: must be at least {2 * BAND_HZ[1]:g} Hz")
    n = round(track.duration * sample_rate)
    t = np.arange(n) / sample_rate
    envelope = track.continuous.at(t)[0] if len(track.continuous.times) else np.zeros(n)
    burst = _burst(sample_rate, burst_s)
    for transient in track.transients:
        start = min(round(transient.time * sample_rate), n)
        span = envelope[start:start + len(burst)]
        np.maximum(span, transient.intensity * burst[:len(span)], out=span)
    return (np.clip(envelope, 0.0, 1.0) * np.sin(2 * np.pi * carrier_hz * t)).astype(np.float32)


def band_share(signal: np.ndarray, sample_rate: int, band: tuple[float, float] = BAND_HZ) -> float:
    """Fraction of the energy of `signal` [N] inside `band` (Hz), from its FFT; 1 for silence.

    The FFT is zero-padded to a fast length (a track's sample count can be prime, which makes an
    unpadded FFT hundreds of times slower); padding interpolates the spectrum without changing
    its total energy."""
    size = scipy.fft.next_fast_len(len(signal), real=True)
    power = np.abs(scipy.fft.rfft(np.asarray(signal, dtype=np.float64), n=size)) ** 2
    freqs = np.fft.rfftfreq(size, 1 / sample_rate)
    total = power.sum()
    return 1.0 if total == 0 else float(power[(freqs >= band[0]) & (freqs <= band[1])].sum() / total)


def validate_drive(signal: np.ndarray, sample_rate: int, require_rate: int | None = DRIVE_RATE) -> None:
    """Raise ValueError naming the broken rule unless `signal` is a valid drive signal.

    Rules: sample rate `require_rate` (None for an audio-rate haptic channel), mono ([N] or [N, 1]),
    finite, peak at most 1, at least 90% of the energy inside 40-400 Hz."""
    if require_rate is not None and sample_rate != require_rate:
        raise ValueError(f"drive: sample rate {sample_rate} Hz, must be {require_rate} Hz")
    signal = np.asarray(signal)
    if not (signal.ndim == 1 or (signal.ndim == 2 and signal.shape[1] == 1)):
        raise ValueError(f"drive: shape {signal.shape}, must be mono ([N] or [N, 1])")
    signal = signal.reshape(-1)
    if not np.all(np.isfinite(signal)):
        index = int(np.flatnonzero(~np.isfinite(signal))[0])
        raise ValueError(f"drive: sample {index} is not finite")
    if len(signal) and np.abs(signal).max() > 1.0:
        index = int(np.abs(signal).argmax())
        raise ValueError(f"drive: peak {abs(signal[index]):.4f} at sample {index}, must be at most 1")
    share = band_share(signal, sample_rate)
    if share < MIN_BAND_SHARE:
        raise ValueError(f"drive: {share:.1%} of the energy inside {BAND_HZ[0]:g}-{BAND_HZ[1]:g} Hz, "
                         f"must be at least {MIN_BAND_SHARE:.0%}")


def write_drive(track: HapticTrack, path: str | Path, carrier_hz: float = 170.0,
                    burst_s: float = 0.015) -> Path:
    """Render `track` at 8 kHz, validate it and write it as a mono 16-bit WAV, atomically."""
    signal = render_drive(track, DRIVE_RATE, carrier_hz, burst_s)
    validate_drive(signal, DRIVE_RATE)
    with atomic_file(path) as tmp:
        sf.write(tmp, signal, DRIVE_RATE, format="WAV", subtype="PCM_16")
    return Path(path)

"""Loudness in LUFS (ITU-R BS.1770-4): the integrated value and a short-term curve.

    audio [C, N] -> K-weighting per channel ─┬─ 400 ms blocks, 75 % overlap -> gates (-70 LUFS absolute,
                                             │    -10 LU relative) -> integrated LUFS   (pyloudnorm)
                                             └─ 3 s mean square every 0.1 s -> short-term LUFS curve

Loudness is -0.691 + 10 log10(sum_c G_c * mean square_c) of the K-weighted channels, G = 1 for
left, right and centre and 1.41 for the surrounds (channel order L, R, C, Ls, Rs; at most 5).
The calibration: a full-scale 1 kHz sine in one channel reads -3.01 LUFS.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm

BLOCK = 0.4  # seconds: BS.1770's gating block, the shortest audio that has an integrated loudness
SHORT_TERM_WINDOW = 3.0  # seconds (EBU Tech 3341 short-term)
SHORT_TERM_RATE = 10.0  # Hz: the short-term curve's frame rate
FLOOR = -70.0  # LUFS: the absolute gate; the short-term curve is clipped here (silence reads FLOOR)
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 G_c for L, R, C, Ls, Rs


def _channels(audio: np.ndarray) -> np.ndarray:
    """float64 [N, C] (pyloudnorm's layout) from [N] or [C, N]."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or not 1 <= x.shape[0] <= len(CHANNEL_GAINS):
        raise ValueError(f"audio must be [N] or [C, N] with 1-5 channels, got shape {x.shape}")
    return x.T


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated, gated loudness (LUFS) of `audio` [N] or [C, N] (1-5 channels, L R C Ls Rs).

    Returns None when the audio is shorter than one 400 ms gating block (BS.1770 defines no value
    there) and -inf when no block passes the -70 LUFS absolute gate (digital silence).
    """
    x = _channels(audio)
    if x.shape[0] < BLOCK * sample_rate:
        return None
    value = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))
    return value if np.isfinite(value) else float("-inf")


def short_term_loudness(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Short-term loudness (LUFS) [T] of `audio` [N] or [C, N]: frame k is the 3 s window centred
    on k / SHORT_TERM_RATE seconds (zeros beyond the ends), T = ceil(duration * 10) frames,
    clipped below at FLOOR. Ungated: it follows the music, quiet passages included."""
    x = _channels(audio)
    meter = pyloudnorm.Meter(sample_rate)
    weighted = x.copy()
    for stage in meter._filters.values():  # the K-weighting pyloudnorm's integrated value uses
        for ch in range(weighted.shape[1]):
            weighted[:, ch] = stage.apply_filter(weighted[:, ch])
    power = (weighted ** 2) @ np.asarray(CHANNEL_GAINS[:weighted.shape[1]])  # [N]
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    n = len(power)
    half = round(SHORT_TERM_WINDOW * sample_rate / 2)
    centres = np.round(np.arange(int(np.ceil(n / sample_rate * SHORT_TERM_RATE))) * sample_rate
                       / SHORT_TERM_RATE).astype(int)
    energy = cumulative[np.clip(centres + half, 0, n)] - cumulative[np.clip(centres - half, 0, n)]
    mean_square = np.maximum(energy, 0.0) / (2 * half)
    with np.errstate(divide="ignore"):
        return np.maximum(-0.691 + 10 * np.log10(mean_square), FLOOR)

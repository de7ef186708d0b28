"""Signal building blocks, all vectorised numpy: Karplus-Strong solved in the frequency domain,
band-limited wavetable oscillators, membranes, band-passed noise and convolution reverb."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
from scipy import fft
from scipy.signal import lfilter

SAMPLE_RATE = 24000
TABLE = 2048  # wavetable length: 1024 harmonics, more than any tone below needs


def seconds_to_samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def hz(tonic: float, cents: np.ndarray | float) -> np.ndarray | float:
    return tonic * np.exp2(np.asarray(cents) / 1200)


@lru_cache(maxsize=64)
def _fft_grid(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For an FFT of `size`: e^{-2 pi i m / size}, the weights a^m with a^size = 1e-5, and 1 / a^m."""
    m = np.arange(size)
    weights = np.exp(m * (np.log(1e-5) / size))
    return np.exp(-2j * np.pi * m / size), weights, 1 / weights


def karplus_strong(f0: float | tuple[float, ...], n: int, rng: np.random.Generator, decay_s: float = 1.0,
                   damping: float = 0.5, pick: float = 0.15, softness_hz: float = 3000.0,
                   gains: tuple[float, ...] | None = None) -> np.ndarray:
    """A plucked string tuned exactly to `f0` Hz (or a course of strings plucked together, one
    per frequency in `f0`, weighted by `gains`), normalised to peak 1.

    Each string is a Karplus-Strong loop of an integer delay N, a loss filter (c, 1-2c, c)
    (c = damping/4, one sample of delay at every frequency) and a first-order allpass whose phase
    at f0 supplies the fractional rest of the period. A sample loop is far too slow in Python,
    so the loop is solved in the frequency domain, Y = X / (1 - g L(z) A(z) z^-N). To keep the
    circular FFT from wrapping the slowly decaying tail onto the attack, signal and system are
    weighted by a^t (z -> z/a, a^size = 1e-5) and the result unweighted; every term is causal,
    so nothing is amplified by the unweighting.
    """
    f0s = (f0,) if np.isscalar(f0) else tuple(f0)
    period = SAMPLE_RATE / min(f0s)
    size = fft.next_fast_len(-(-(n + 1) // 1024) * 1024, real=True)  # few distinct sizes: cached grids
    twiddle, weights, unweights = _fft_grid(size)
    a = weights[1]
    burst = rng.standard_normal(int(np.ceil(period)))
    pole = np.exp(-2 * np.pi * softness_hz / SAMPLE_RATE)
    burst = lfilter([1 - pole], [1, -pole], burst)  # softer plucks have fewer highs
    burst -= np.roll(burst, max(1, int(pick * period)))  # pluck position: comb notches, no DC
    k = np.arange(size // 2 + 1)
    z1 = a * twiddle[:k.size]  # a z^-1 on the unit circle
    c = 0.25 * damping
    loss = c + (1 - 2 * c) * z1 + c * z1 * z1
    response = 0.0
    for f, gain in zip(f0s, gains or (1.0,) * len(f0s)):
        period = SAMPLE_RATE / f
        w0 = 2 * np.pi / period
        delay = int(np.floor(period - 1.5))
        frac = period - 1 - delay  # in [0.5, 1.5): where a first-order allpass behaves well
        tan = np.tan(w0 * (1 - frac) / 2)
        eta = tan / (np.sin(w0) - tan * np.cos(w0))  # allpass phase delay exactly `frac` at f0
        g = 10 ** (-3 / (decay_s * f))  # -60 dB after decay_s
        loop = (g * a ** delay) * twiddle[k * delay % size] * loss * (eta + z1) / (1 + eta * z1)
        response = response + gain / (1 - loop)
    y = fft.irfft(fft.rfft(burst * weights[:burst.size], size) * response, size)[:n] * unweights[:n]
    return y / (np.abs(y).max() + 1e-12)


def warp(y: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Bend a fixed-pitch tone by reading it at rate `ratio(t)` (new pitch / recorded pitch)."""
    position = np.concatenate([[0.0], np.cumsum(ratio[:-1])])
    return np.interp(position, np.arange(y.size), y, right=0.0)


def buzz(y: np.ndarray, amount: float) -> np.ndarray:
    """Jawari-like buzz: a rectifying bridge adds a bright band of upper partials."""
    rough = np.diff(y * np.abs(y), prepend=0.0)
    return y + amount * rough / (np.abs(rough).max() + 1e-12) * np.abs(y).max()


def harmonic_table(amps: np.ndarray) -> np.ndarray:
    """One period of sum_k amps[k-1] sin(2 pi k t), with a wrap-around sample for interpolation."""
    spec = np.zeros(TABLE // 2 + 1, complex)
    spec[1:amps.size + 1] = -0.5j * TABLE * amps
    table = fft.irfft(spec, TABLE)
    return np.append(table, table[0])


Spectrum = Callable[[float, int], np.ndarray]  # (f0, number of harmonics) -> harmonic amplitudes


def oscillator(tonic: float, cents: np.ndarray, spectrum: Spectrum, phase: float = 0.0) -> np.ndarray:
    """A band-limited harmonic tone following the pitch `cents` above `tonic` Hz, sample by sample.

    One wavetable per half-octave, built for the band's centre with only the harmonics below
    0.4 x sample rate at the next centre up; each sample crossfades the two tables around its
    pitch, so glides and vibrato change timbre smoothly, nothing aliases, and the cost does not
    grow with the number of harmonics.
    """
    x = np.maximum(cents * (2 / 1200) + (2 * np.log2(tonic / 20.0) - 0.5), 0.0)  # band centres at integers
    freq = hz(tonic, cents)
    low = np.floor(x)
    weight = (x - low).astype(np.float32)
    first = int(low.min())
    tables = []
    for b in range(first, int(low.max()) + 2):
        centre, top = 20.0 * 2 ** ((b + 0.5) / 2), 20.0 * 2 ** ((b + 1.5) / 2)
        amps = spectrum(centre, max(1, int(0.4 * SAMPLE_RATE / top)))
        tables.append(harmonic_table(amps / (np.abs(amps).sum() + 1e-12)))
    flat = np.concatenate(tables).astype(np.float32)
    slope = np.append(np.diff(flat), np.float32(0))
    cycles = np.cumsum(freq * (1 / SAMPLE_RATE))
    cycles += phase
    pos = ((cycles - np.floor(cycles)) * TABLE).astype(np.float32)
    i = pos.astype(np.int32)
    frac = pos - i
    i += (low - first).astype(np.int32) * (TABLE + 1)
    below = flat[i] + frac * slope[i]
    i += TABLE + 1
    above = flat[i] + frac * slope[i]
    above -= below
    above *= weight
    return below + above


def smooth(x: np.ndarray, seconds: float) -> np.ndarray:
    """One-pole smoothing with time constant `seconds`: steps in an envelope become short ramps."""
    pole = np.exp(-1 / (seconds * SAMPLE_RATE))
    return lfilter([1 - pole], [1, -pole], x)


def band_noise(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """White noise band-passed to [lo, hi] Hz with soft edges, unit RMS."""
    size = fft.next_fast_len(n, real=True)
    f = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    low, high = (lo / np.maximum(f, 1.0)) ** 2, (f / hi) ** 2
    gain = 1 / ((1 + low * low) * (1 + high * high))
    y = fft.irfft(fft.rfft(rng.standard_normal(size)) * gain, size)[:n]
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def membrane(f0: float, n: int, decay_s: float, modes: tuple[tuple[float, float, float], ...] = ((1, 1, 1),),
             glide: float = 0.0, glide_s: float = 0.03) -> np.ndarray:
    """A struck membrane: damped partials (ratio, amplitude, decay factor) whose pitch starts
    `glide` x higher (or lower, if negative) and settles within `glide_s`."""
    t = np.arange(n) / SAMPLE_RATE
    phase = 2 * np.pi * f0 * np.cumsum(1 + glide * np.exp(-t / glide_s)) / SAMPLE_RATE
    y = sum(amp * np.sin(ratio * phase) * np.exp(-t / (decay_s * dk)) for ratio, amp, dk in modes)
    return y


def decay(n: int, seconds: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (seconds * SAMPLE_RATE))


def convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Linear convolution by FFT in single precision (plenty for a reverb), cut to the length of `x`."""
    size = fft.next_fast_len(x.size + h.size - 1, real=True)
    spec = fft.rfft(x.astype(np.float32), size) * fft.rfft(h.astype(np.float32), size)
    return fft.irfft(spec, size)[:x.size]


def room(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A small room's impulse response: exponentially decaying noise that darkens as it decays."""
    n = seconds_to_samples(0.6 * rt60)  # down 36 dB: the rest is below the noise floor
    t = np.arange(n) / SAMPLE_RATE
    bright, dark = rng.standard_normal(n), lfilter([0.15], [1, -0.85], rng.standard_normal(n))
    mix = np.exp(-t / (0.25 * rt60))
    h = (mix * bright + (1 - mix) * dark * 2.5) * 10 ** (-3 * t / rt60)
    h[:seconds_to_samples(0.004)] = 0.0  # a few ms before the first reflection
    return h / np.sqrt(np.sum(h ** 2))

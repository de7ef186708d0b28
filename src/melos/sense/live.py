"""Live SENSE: haptic events from an audio stream as it plays, with a fixed 10 ms look-ahead.

`SenseStream.push(block)` takes any number of samples (blocks of up to 10 ms suit real time) and
returns the events whose decision those samples completed. Everything runs on a fixed grid of
stream samples, so the events do not depend on how the stream was cut into blocks.

    samples ─ mono ─┬─ every 1 ms: energy of the last 10 ms (pre-emphasised) ──> attack envelope
                    ├─ every 5 ms: |FFT| of the last WINDOW s ─┬─ log flux per band ─> onset tests
                    │                                          └─ centroid ─> sharpness
                    └─ 40-400 Hz band-pass (causal) ─ every 10 ms: RMS of the last 20 ms ─> bed

An onset test that passes at stream time τ is dated at the steepest rise of the attack envelope
in [τ - LOOKAHEAD, τ] (as the offline `onsets.refine` dates at the steepest rise): an event
dated d never depends on samples after d + LOOKAHEAD, and is returned at most one hop (5 ms)
after them. The bed's 20 ms window ending at τ is dated at its centre, τ - 10 ms.

What differs from the offline analysis (`melos.sense.analysis`), because the future is unknown:
- the spectrum's window ends at the newest sample, with a falling tail (16 ms) shorter than a
  Hann window's (21 ms) so that an attack shows sooner, instead of a Hann window centred on the
  frame (an 8 ms tail shows attacks 0.6 ms sooner on median, 1.4 ms end to end with 10 ms
  blocks, but the flux of a steady 29-partial tone is 3 times larger with it, noise that hides
  attacks in sustained music: with 16 ms, live-offline F@25 rose from 0.49 to 0.58 on raga
  clips, benchmarks/sense_live.py);
- the file's maxima (of magnitude, of flux, the bed's 95th percentile) become running
  estimates: a peak hold that releases slowly, and a log-domain 95th-percentile tracker;
- an onset is a frame where a band's flux passes the offline tests against the past only
  (larger than the last 20 ms, `delta` above the last 100 ms' mean, the band's ratio times the
  last 1 s's median; `live_onsets`), in the mid and high bands only (offline: low too);
- the density gate keeps the earlier of two onsets closer than `min_gap`, not the stronger;
- no percussive stem, downbeats or sections: intensity = transient_gain x strength, and every
  onset is a transient;
- the stream is taken to start from silence: one whose first hop (5 ms) is above START_LEVEL
  starts with an onset, of each band's full strength (offline: a file whose first 20 ms are
  within 30 dB of its loudest 20 ms, which a stream cannot know; the onset tests need a past,
  so without this rule a loud start was never an onset).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.fft import next_fast_len, rfft
from scipy.signal import butter, sosfilt

from .features import LOW_BAND, SHARPNESS_RANGE
from .live_onsets import BandOnsets
from .mapping import PRESETS

LOOKAHEAD = 0.01  # seconds: an event dated d depends on no sample after d + LOOKAHEAD
MAX_BLOCK = 0.01  # seconds: the largest block `push` is meant for (real-time pacing)
BED_FLOOR = 1e-4  # the bed's reference never falls below this RMS (-80 dB): silence stays still
START_LEVEL = 10 ** (-50 / 20)  # RMS of the first hop (-50 dBFS) above which the stream starts with an onset


@dataclass(frozen=True)
class LiveConfig:
    """Settings of the live analyser (defaults mirror the offline analysis where it has one)."""

    step: float = 0.001  # s: attack-envelope step (as `onsets.attack_envelope`)
    attack_window: float = 0.01  # s: its energy window
    hop_steps: int = 5  # steps between spectra (5 ms)
    window: float = 0.043  # s: spectrum window (1024 samples at 24 kHz, as offline)
    window_tail: float = 0.016  # s: its falling part (a Hann window's is half the window)
    max_frequency: float = 12000.0  # Hz: the offline analysis' band (24 kHz)
    compression: float = 1000.0  # gain inside log1p, as `onsets.spectral_flux`
    flux_lag: float = 0.01  # s: flux compares spectra this far apart (the offline hop)
    delta: float = 0.08  # the offline `pick_peaks` tests per band (delta 0.06 there), against the past only
    max_window: float = 0.02
    mean_window: float = 0.1
    median_window: float = 1.0
    min_rise: float = 0.115  # `onsets.refine`: the smallest 1 ms log-energy step that is an attack
    run_fraction: float = 0.25
    release: float = 10.0  # s: a running maximum falls by e over this long once the music is quieter
    min_gap: float = 0.08  # s: the density gate
    rms_window: float = 0.02  # s: the bed's RMS window (`analysis.RMS_WINDOW`)
    bed_steps: int = 10  # steps between continuous events (10 ms)
    quantile_rate: float = 0.2  # nats per bed event: speed of the bed's 95th-percentile tracker
    preset: str = "default"
    bed_reference: float | None = None  # a fixed low-band RMS for full amplitude instead of the tracker


class SenseStream:
    """Causal haptic analysis of one audio stream (see the module docstring).

    Args:
        sample_rate: Hz, 8-192 kHz; the analysis runs at this rate (no resampler delay).
        channels: channels in each block ([n, channels]; averaged to mono).
        config: analysis settings.
    """

    def __init__(self, sample_rate: int, channels: int = 1, config: LiveConfig | None = None):
        if not 8000 <= sample_rate <= 192000:
            raise ValueError(f"sample rate must be 8-192 kHz, got {sample_rate}")
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        c = self.config = config or LiveConfig()
        if c.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {c.preset!r}")
        self.preset = PRESETS[c.preset]
        self.sample_rate, self.channels = sample_rate, channels
        self.step_length = max(1, round(c.step * sample_rate))
        self.hop_length = c.hop_steps * self.step_length
        self.n_window = next_fast_len(round(c.window * sample_rate), real=True)
        self.lookahead_steps = round(LOOKAHEAD / c.step)
        n_attack = max(self.step_length, round(c.attack_window * sample_rate))
        self.history = max(self.n_window, n_attack + 1, round(c.rms_window * sample_rate))
        self.buffer = np.zeros(self.history + self.hop_length)  # newest sample last
        self.low_buffer = np.zeros_like(self.buffer)
        self.n_attack, self.n_rms = n_attack, round(c.rms_window * sample_rate)
        self.pending = np.zeros(0)  # samples not yet on the grid
        self.n_samples = 0  # samples consumed onto the grid
        self.window = _asymmetric_window(self.n_window, max(1, round(c.window_tail * sample_rate)))
        freqs = np.arange(self.n_window // 2 + 1) * sample_rate / self.n_window
        self.n_bins = int(np.searchsorted(freqs, min(c.max_frequency, sample_rate / 2), side="right"))
        self.freqs = freqs[:self.n_bins]
        self.sos = butter(4, LOW_BAND, btype="bandpass", fs=sample_rate, output="sos")
        self.zi = np.zeros((len(self.sos), 2))  # the filter starts at rest: silence before the stream
        hop = self.hop_length / sample_rate
        self.decay = np.exp(-hop / c.release)
        self.onsets = BandOnsets(self.freqs, hop, c)
        self.settle = self.n_window + self.onsets.flux_lag * self.hop_length  # samples until no zeros are compared
        self.energy: deque[float] = deque([0.0] * (self.lookahead_steps + 1), maxlen=self.lookahead_steps + 1)
        self.peak_energy = self.peak_total = 0.0
        self.bed_level = None  # log of the bed's running 95th percentile
        self.last_onset = -np.inf
        self.sharpness = 0.0
        self.n_hops = 0

    @property
    def time(self) -> float:
        """Seconds of audio pushed so far (the stream's clock)."""
        return (self.n_samples + len(self.pending)) / self.sample_rate

    def push(self, block: np.ndarray) -> list[dict]:
        """Analyse `block` ([n] or [n, channels], any n) and return the events it completes, in
        time order: transients {"type", "time", "intensity", "sharpness", "layer"} and continuous
        {"type", "time", "amplitude", "frequency"} (every 10 ms), times in s from the stream's start."""
        x = np.asarray(block, dtype=np.float64)
        if x.ndim == 2 and x.shape[1] == self.channels:
            x = x.mean(axis=1)
        elif not (x.ndim == 1 and self.channels == 1):
            raise ValueError(f"blocks must be [n] (mono) or [n, {self.channels}], got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("audio block contains NaN or infinite samples")
        self.pending = np.concatenate([self.pending, x])
        events: list[dict] = []
        while len(self.pending) >= self.hop_length:
            hop, self.pending = self.pending[:self.hop_length], self.pending[self.hop_length:]
            events += self._hop(hop)
        return events

    def _hop(self, x: np.ndarray) -> list[dict]:
        """Advance the grid by one hop of samples [hop_length]."""
        c, n = self.config, self.hop_length
        low, self.zi = sosfilt(self.sos, x, zi=self.zi)
        self.buffer = np.concatenate([self.buffer[n:], x])
        self.low_buffer = np.concatenate([self.low_buffer[n:], low])
        self.n_samples += n
        self.n_hops += 1
        events: list[dict] = []

        # attack envelope: energy of the pre-emphasised last `attack_window`, every step
        emphasised = np.diff(self.buffer[-(n + self.n_attack + 1):])
        cumulative = np.concatenate([[0.0], np.cumsum(np.square(emphasised))])  # over n + n_attack samples
        for k in range(c.hop_steps):
            stop = self.n_attack + (k + 1) * self.step_length
            self.energy.append(float(cumulative[stop] - cumulative[stop - self.n_attack]))
        self.peak_energy = max(self.peak_energy * self.decay, max(list(self.energy)[-c.hop_steps:]))

        # spectrum of the last window: its centroid, and its flux per band against `flux_lag` ago
        magnitude = np.abs(rfft(self.buffer[-self.n_window:] * self.window)[:self.n_bins])
        total = float(magnitude.sum())
        self.peak_total = max(self.peak_total * self.decay, total)
        centroid = float(self.freqs @ magnitude) / total if total > 1e-4 * self.peak_total else 0.0  # as offline
        self.sharpness = _sharpness(centroid)

        strength = self.onsets.update(magnitude, settled=self.n_samples >= self.settle)
        if self.n_hops == 1 and float(np.sqrt(np.mean(np.square(x)))) >= START_LEVEL:  # a loud start
            strength = max(strength or 0.0, float(self.onsets.weights.max()))
        if strength is not None:
            transient = self._transient(strength)
            if transient is not None:
                events.append(transient)

        if self.n_hops * c.hop_steps % c.bed_steps == 0:
            events.append(self._continuous())
        return events

    def _transient(self, strength: float) -> dict | None:
        """The transient of an onset found now, dated at the steepest rise of the attack envelope
        in the last LOOKAHEAD (`onsets.refine` within what may be looked back on), or None when
        the density gate drops it."""
        c = self.config
        energy = np.asarray(self.energy)  # steps J - lookahead .. J, J = now
        floor = 1e-10 * max(self.peak_energy, 1e-30)
        rise = np.diff(np.log(energy + floor))  # rise[i] dated at step J - lookahead + i + 1/2
        first = self.n_samples // self.step_length - self.lookahead_steps
        best = int(np.argmax(rise))
        if rise[best] >= c.min_rise:
            while best > 0 and rise[best - 1] >= c.run_fraction * rise[best]:
                best -= 1
            time = (first + best + 0.5) * self.step_length / self.sample_rate
        else:
            time = (first + 0.5) * self.step_length / self.sample_rate
        time = max(time, 0.0)
        if time - self.last_onset < c.min_gap:
            return None
        self.last_onset = time
        return {"type": "transient", "time": round(time, 6),
                "intensity": round(min(1.0, self.preset.transient_gain * strength), 4),
                "sharpness": round(self.sharpness, 4), "layer": "onset"}

    def _continuous(self) -> dict:
        """The bed now: RMS of the low band over the last `rms_window`, dated at its centre, over
        the running 95th percentile (or the fixed `bed_reference`); frequency = sharpness."""
        c, p = self.config, self.preset
        rms = float(np.sqrt(np.mean(np.square(self.low_buffer[-self.n_rms:]))))
        if c.bed_reference is not None:
            reference = c.bed_reference
        else:
            level = np.log(max(rms, 1e-9))
            if self.bed_level is None:
                self.bed_level = level if rms > 1e-6 else None
            elif level > self.bed_level:
                self.bed_level += 0.95 * c.quantile_rate  # up 19x as fast as down: settles at the 95th percentile
            else:
                self.bed_level -= 0.05 * c.quantile_rate
            reference = np.exp(max(self.bed_level, np.log(BED_FLOOR))) if self.bed_level is not None else 1.0
        amplitude = min(1.0, p.bed_gain * min(1.0, rms / reference) ** p.bed_gamma)
        time = max(0.0, (self.n_samples - self.n_rms / 2) / self.sample_rate)
        return {"type": "continuous", "time": round(time, 6), "amplitude": round(amplitude, 4),
                "frequency": round(self.sharpness, 4)}


def _sharpness(centroid: float) -> float:
    """`features.sharpness` of one centroid (Hz)."""
    low, high = SHARPNESS_RANGE
    return float(np.clip(np.log(max(centroid, 1e-9) / low) / np.log(high / low), 0.0, 1.0))


def _asymmetric_window(n: int, tail: int) -> np.ndarray:
    """A rising half-Hann over n - tail samples, then a falling one over the newest `tail`: a short
    tail weighs the newest samples more, so an attack shows in the spectrum sooner. tail = n/2 is
    a Hann window."""
    rise = np.sin(0.5 * np.pi * np.arange(n - tail) / (n - tail)) ** 2
    fall = np.cos(0.5 * np.pi * np.arange(tail) / tail) ** 2
    return np.concatenate([rise, fall])

"""Causal onset test per frequency band, for live SENSE (`live.SenseStream`).

The offline detector (`onsets.detect_onsets`) computes spectral flux per band, scales each by
the band's largest flux in the file and picks peaks with thresholds around each frame. Here each
band has the same flux and tests, against the past only: its magnitude and flux maxima are
running estimates (a peak hold that releases by e over `release` s), and a frame is an onset
of the band when its flux is larger than the last `max_window`, `delta` above the mean of the
last `mean_window`, `min_ratio` (the band's, `onsets.BAND_RATIOS`) times the median of the last
`median_window` and at least `onsets.MIN_PEAK` of the running maximum. A frame is an onset when
any band's is; its strength is the largest band weight x novelty (`onsets.BAND_WEIGHTS`).

Only the mid and high bands are used. The low band (30-150 Hz) spans 5 bins of the 43 ms
window, and a causal window sees a low note's attack late and smeared: with it the agreement
with the offline onsets fell on every clip and track tried (e.g. 0.94 to 0.74 on a western
clip), without it rose over full-band flux (0.38 to 0.62 on a Wesnoth track,
benchmarks/sense_live.py). A low band on a Hann-windowed spectrum of its own, even with the
offline peak picking (future frames included), left the pooled agreement on six Wesnoth tracks
where it was (0.71 to 0.70-0.71): it finds the low onsets of quiet tracks but as many more that
the offline analysis does not keep.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from .onsets import BAND_RATIOS, BAND_WEIGHTS, BANDS, MIN_PEAK

LIVE_BANDS = ("mid", "high")


class BandOnsets:
    """The per-band onset test on successive magnitude spectra (see the module docstring).

    Args:
        freqs: centre frequency of each bin of the spectra (Hz), [F].
        hop: seconds between spectra.
        config: a `live.LiveConfig` (compression, flux_lag, delta, the windows, release).
    """

    def __init__(self, freqs: np.ndarray, hop: float, config):
        c = self.config = config
        self.bins = [slice(int(np.searchsorted(freqs, BANDS[name][0])), int(np.searchsorted(freqs, BANDS[name][1])))
                     for name in LIVE_BANDS]
        self.ratios = np.array([BAND_RATIOS[name] for name in LIVE_BANDS])
        self.weights = np.array([BAND_WEIGHTS[name] for name in LIVE_BANDS])
        self.decay = np.exp(-hop / c.release)
        self.flux_lag = max(1, round(c.flux_lag / hop))
        self.n_max = max(1, round(c.max_window / hop))
        self.n_mean = max(1, round(c.mean_window / hop))
        n_median = max(1, round(c.median_window / hop))
        k = len(LIVE_BANDS)
        self.peak_magnitude, self.peak_flux = np.zeros(k), np.zeros(k)
        self.spectra: list[deque[np.ndarray]] = [deque(maxlen=self.flux_lag) for _ in range(k)]  # log |X|
        self.flux: list[deque[float]] = [deque(maxlen=n_median) for _ in range(k)]  # the last second's

    def update(self, magnitude: np.ndarray, settled: bool) -> float | None:
        """Take the next spectrum [F]; the onset's strength (0..1) if this frame is one, else None.
        `settled`: the window no longer holds the zeros before the stream (until then a rise may be
        an onset, a loud start, but does not set the running maxima)."""
        c, strength = self.config, None
        for k, bins in enumerate(self.bins):
            band = magnitude[bins]
            if band.size == 0:  # above the Nyquist frequency
                continue
            self.peak_magnitude[k] = max(self.peak_magnitude[k] * self.decay, float(band.max()))
            log_mag = np.log1p(c.compression / max(self.peak_magnitude[k], 1e-20) * band)
            spectra = self.spectra[k]
            previous = spectra[0] if len(spectra) == self.flux_lag else np.zeros_like(log_mag)
            spectra.append(log_mag)
            flux = float(np.maximum(log_mag - previous, 0.0).sum())
            self.peak_flux[k] = max(self.peak_flux[k] * self.decay, flux) if settled else self.peak_flux[k] * self.decay
            past = np.fromiter(self.flux[k], float, len(self.flux[k]))
            self.flux[k].append(flux)
            scale = max(self.peak_flux[k], flux, 1e-20)  # novelty = flux / the running maximum
            if self._is_onset(flux, past, scale, self.ratios[k]):
                novelty = self.weights[k] * flux / scale
                strength = novelty if strength is None else max(strength, novelty)
        return strength

    def _is_onset(self, flux: float, past: np.ndarray, scale: float, ratio: float) -> bool:
        """The offline `pick_peaks` tests against the past, and `MIN_PEAK` (see the module docstring)."""
        if len(past) == 0:
            return False
        mean = (past[-self.n_mean:].sum() + flux) / (min(len(past), self.n_mean) + 1)
        return bool(flux > past[-self.n_max:].max() and flux - mean >= self.config.delta * scale
                    and flux >= ratio * np.median(np.append(past, flux)) and flux >= MIN_PEAK * scale)

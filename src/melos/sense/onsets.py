"""Onsets: spectral-flux peaks per band, refined to the physical attack, thinned by a density gate.

    audio ──STFT──┬─ low  (30-150 Hz)  flux ─ peaks ─┐
                  ├─ mid  (150-2500 Hz) flux ─ peaks ─┼─ refine each to its steepest rise ─ merge ─ gate
                  └─ high (2.5-12 kHz)  flux ─ peaks ─┘   (the low band on its own envelope)

Why bands: a 60 Hz kick moves 4 of 513 STFT bins while a snare moves hundreds, so on full-band
flux a kick 6-18 dB under the snare is a bump too small to pick, and the weakest tap when it is
picked — the reverse of what a hand or a seat feels. Each band's flux is normalised on its own,
so the strongest hit of each band reaches 1, and a band only counts as far as it is present in
the music (`band_presence`: its loudest frame within 25 dB of the loudest band's counts fully,
fading to nothing 40 dB down; real music keeps its bands within 25 dB), so leakage into an empty
band makes no onsets. A peak must reach MIN_PEAK of its band's largest flux and BAND_RATIOS
times its moving median: a band of a few bins (the low one has 5) fluctuates on noise far more
than the full spectrum (on white noise the largest peak-to-median ratio is 5.8 in the low band,
1.7-1.8 in the others), and log compression keeps a hit 14 dB under the band's loudest near 0.8
of its flux, so real hits clear MIN_PEAK with room. Onsets found in several bands within
MERGE_S are one event, dated by its most salient band; its strength is the largest of its
bands' strengths times BAND_WEIGHTS, low band first: low hits are what the body feels most.

Why the refinement: a flux peak marks the frame whose window gained the most, which sits a
frame or two from the attack depending on the window (tens of ms) and the attack's shape.
Haptics need the attack itself (touch after sound is noticed from about 24 ms), so each peak is
moved to the start of the steepest 1 ms rise of a short-window log-energy envelope near it:
the pre-emphasised full band for mid and high onsets, the low band itself (causally filtered,
so nothing rings before the attack) for low ones: the pre-emphasis that keeps sustained low
notes from hiding attacks above them would hide a kick.

The file's start is a special case, as nothing precedes it. When the recording starts loud (its
first 20 ms within START_RANGE_DB of its loudest 20 ms: a hit or chord at 0 s) the first frame's
flux is its rise from silence, at most the largest flux inside the file, so the start is an
onset. Otherwise every peak within the first half window is dropped: there the STFT's zero
padding would make the noise floor look like an attack. So is every peak within the last half
window, where a recording cut off mid-sound leaks broadband energy into the spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d
from scipy.signal import butter, sosfilt


START_RANGE_DB = 30.0  # a peak in the first half window needs the start within this of the loudest part
START_WINDOW = 0.02  # seconds of audio whose level decides whether the file starts with an attack
BANDS = {"low": (30.0, 150.0), "mid": (150.0, 2500.0), "high": (2500.0, 12000.0)}  # Hz
BAND_WEIGHTS = {"low": 1.0, "mid": 0.75, "high": 0.5}  # felt weight of a band's strongest hit
BAND_RATIOS = {"low": 6.5, "mid": 2.0, "high": 2.0}  # pick_peaks' min_ratio: above white noise's largest
PRESENCE_DB = (25.0, 40.0)  # a band this far under the loudest counts fully .. not at all
MERGE_S = 0.03  # onsets of different bands closer than this are one event
MIN_PEAK = 0.2  # a band's flux peak must reach this fraction of the band's largest flux


@dataclass
class Onsets:
    """Detected onsets and the curve they came from."""

    times: np.ndarray  # seconds, increasing, [K]
    strength: np.ndarray  # max over bands of BAND_WEIGHTS x the band's strength, 0..1, [K]
    bands: np.ndarray  # per band (BANDS order) its flux there / its largest flux x presence, 0..1, [K, 3]
    novelty: np.ndarray  # normalised full-band spectral flux on the frame grid, 0..1, [T]


def spectral_flux(magnitude: np.ndarray, bins: slice = slice(None), compression: float = 1000.0) -> np.ndarray:
    """Half-wave-rectified frame-to-frame rise of log-compressed magnitude, summed over bins, [T].

    The magnitude is scaled by its maximum before `log1p(compression * m)`, so the curve does
    not depend on the recording's level and covers about 60 dB. Frame 0 has no predecessor: 0.

    Args:
        magnitude: |STFT| [F, T].
        bins: the frequency bins to sum (e.g. only the low band).
        compression: gain inside the log; larger weighs quiet partials more.
    """
    band = magnitude[bins]
    log_mag = np.log1p(compression / max(float(band.max(initial=0.0)), 1e-20) * band)
    rise = np.maximum(np.diff(log_mag, axis=1), 0.0).sum(axis=0)
    return np.concatenate([[0.0], rise])


def pick_peaks(novelty: np.ndarray, frame_rate: float, delta: float = 0.06, max_window: float = 0.02,
               mean_window: tuple[float, float] = (0.1, 0.07), min_ratio: float = 1.5,
               median_window: float = 1.0) -> np.ndarray:
    """Frames where the novelty is a local maximum, rises `delta` above its moving mean and is at
    least `min_ratio` times its moving median.

    The ratio test is what tells an attack from stationary noise: the flux of noise fluctuates
    by up to about 1.3x its median frame to frame at any level, so without it a recording of hiss
    (whose largest fluctuation becomes 1 after normalisation) would be full of onsets.

    Args:
        novelty: onset curve scaled to 0..1, [T].
        frame_rate: frames per second.
        delta: margin above the local mean (in novelty units).
        max_window: a peak is the largest value within +-max_window seconds.
        mean_window: seconds before and after each frame averaged for the adaptive threshold.
        min_ratio, median_window: the ratio test, against the median over `median_window` s.

    Returns:
        Increasing frame indices.
    """
    if len(novelty) < 3:
        return np.zeros(0, dtype=int)
    half = max(1, round(max_window * frame_rate))
    local_max = maximum_filter1d(novelty, 2 * half + 1, mode="constant")
    before, after = (max(1, round(s * frame_rate)) for s in mean_window)
    # uniform_filter1d centres its window; shift it so it spans [k - before, k + after].
    size = before + after + 1
    local_mean = uniform_filter1d(novelty, size, mode="constant", origin=before - size // 2)
    previous = np.concatenate([[-np.inf], novelty[:-1]])  # on a plateau only its first frame counts
    local_median = median_filter(novelty, max(3, round(median_window * frame_rate) | 1), mode="reflect")
    peaks = ((novelty >= local_max) & (novelty > previous) & (novelty >= local_mean + delta)
             & (novelty >= min_ratio * local_median))
    return np.flatnonzero(peaks)


def attack_envelope(audio: np.ndarray, sample_rate: int, step: float = 0.001,
                    window: float = 0.01, emphasis: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rise per step of a causal short-window log energy, and the times each rise is centred on.

    The signal is first-differenced (a pre-emphasis, half a sample of delay) so sustained low
    notes do not hide the attack of what enters over them. Energy frame j sums the `window`
    seconds that end at j * step, so it first sees an attack at t0 in the first frame after t0:
    the rise between frames j-1 and j is dated at their midpoint, which makes the estimate
    unbiased however long the window is. The window is 10 ms rather than 2 ms because a shorter
    one ripples within each period of a low tone, and those ripples outrank real attacks
    (`emphasis=False` and a 20 ms window suit a band-passed low band, whose attacks are the tones).

        samples   ... |- - - - -|- - - - -| ...      attack at t0
        frames        j-1       j                    frame j = energy of (j*step - window, j*step]
        rise_j = log E_j - log E_{j-1}, dated (j - 1/2) * step

    Returns:
        rise [J] (natural log of an energy ratio), times [J] in seconds.
    """
    step_length = max(1, round(step * sample_rate))
    window_length = max(step_length, round(window * sample_rate))
    emphasised = np.diff(audio, prepend=audio[:1] if len(audio) else audio) if emphasis else audio
    energy = np.concatenate([[0.0], np.cumsum(np.square(emphasised, dtype=np.float64))])
    ends = np.arange(0, len(audio) + 1, step_length)
    frames = energy[ends] - energy[np.maximum(ends - window_length, 0)]
    floor = 1e-10 * max(float(frames.max(initial=0.0)), 1e-30)  # -100 dB under the loudest frame
    log_energy = np.log(np.maximum(frames, 0.0) + floor)
    rise = np.diff(log_energy)
    times = (np.arange(1, len(ends)) - 0.5) * step_length / sample_rate
    return rise, times


def refine(times: np.ndarray, rise: np.ndarray, rise_times: np.ndarray,
           search: tuple[float, float] = (-0.03, 0.03), min_rise: float = 0.115,
           run_fraction: float = 0.25) -> np.ndarray:
    """Move each onset to the start of the steepest rise of the attack envelope near it.

    The steepest step within `search` of the coarse time is found, then followed back while the
    steps before it still rise at least `run_fraction` as much: a ramped attack (a bowed or
    blown note) is dated where it starts to climb, not halfway up. Measured on synthetic notes
    with a 5 ms linear attack over other notes' tails this moves the median error from +4 ms
    to +3 ms; clicks and noise bursts are dated within half a step either way.

    Args:
        times: coarse onset times (s), [K].
        rise, rise_times: from `attack_envelope`.
        search: seconds before (negative) and after each time to look in; flux peaks of sharp
            attacks come 5-18 ms early, of slow ones late, so the window spans both sides.
        min_rise: the smallest step (natural log of energy; 0.115 = 0.5 dB) that counts as an
            attack; without one (a legato pitch change) the coarse time is kept.
        run_fraction: how much of the steepest step an earlier step must rise to extend it.

    Returns:
        Refined times (s), [K].
    """
    refined = np.array(times, dtype=float)
    if len(rise) == 0:
        return refined
    lo = np.searchsorted(rise_times, refined + search[0])
    hi = np.searchsorted(rise_times, refined + search[1], side="right")
    for i, (a, b) in enumerate(zip(lo, hi)):
        if b <= a:
            continue
        best = a + int(np.argmax(rise[a:b]))
        if rise[best] < min_rise:
            continue
        start = best
        while start > a and rise[start - 1] >= run_fraction * rise[best]:
            start -= 1
        refined[i] = rise_times[start]
    return refined


def density_gate(times: np.ndarray, strength: np.ndarray, min_gap: float) -> np.ndarray:
    """Indices of the onsets kept when no two may be closer than `min_gap` seconds.

    Strongest first: an onset is kept unless a stronger kept one lies within `min_gap` of it
    (ties go to the earlier). Returns increasing indices into `times`.
    """
    order = sorted(range(len(times)), key=lambda i: (-strength[i], times[i]))
    kept: list[int] = []
    for i in order:
        if all(abs(times[i] - times[j]) >= min_gap for j in kept):
            kept.append(i)
    return np.array(sorted(kept, key=lambda i: times[i]), dtype=int)


def starts_loud(audio: np.ndarray, sample_rate: int) -> bool:
    """Whether the first START_WINDOW seconds are within START_RANGE_DB of the loudest such block
    (blocks laid end to end), i.e. whether the sound at 0 s can be an attack of its own."""
    block = max(1, round(START_WINDOW * sample_rate))
    n = len(audio) // block * block
    if n == 0:
        return True
    energy = np.square(audio[:n], dtype=np.float64).reshape(-1, block).mean(axis=1)
    return bool(energy[0] > 0 and 10 * np.log10(energy[0] / energy.max()) >= -START_RANGE_DB)


def band_bins(band: tuple[float, float], n_fft: int, sample_rate: int) -> slice:
    """The STFT bins whose centre frequency lies in `band` (Hz)."""
    lo, hi = (int(np.ceil(f * n_fft / sample_rate)) for f in band)
    return slice(lo, min(hi, n_fft // 2 + 1))


def band_presence(magnitude: np.ndarray, bins: list[slice]) -> np.ndarray:
    """Per band, how far it is part of the music, 0..1: 1 when its loudest frame is within
    PRESENCE_DB[0] of the loudest band's, falling linearly (in dB) to 0 at PRESENCE_DB[1]."""
    peak = np.array([float(np.square(magnitude[b]).sum(axis=0).max(initial=0.0)) for b in bins])
    level = 10 * np.log10(np.maximum(peak, 1e-30) / max(float(peak.max()), 1e-30))
    full, none = PRESENCE_DB
    return np.clip((level + none) / (none - full), 0.0, 1.0)


def _novelty(magnitude: np.ndarray, bins: slice, loud_start: bool) -> np.ndarray:
    """Spectral flux of `bins` over its largest value, 0..1 [T], with the loud-start rule at frame 0."""
    flux = spectral_flux(magnitude, bins)
    if loud_start and flux.size > 1:
        padded = np.concatenate([np.zeros_like(magnitude[:, :1]), magnitude[:, :2]], axis=1)
        flux[0] = min(spectral_flux(padded, bins)[1], float(flux[1:].max()))
    return flux / max(float(flux.max(initial=0.0)), 1e-20)


def _at(curve: np.ndarray, frames: np.ndarray, reach: int) -> np.ndarray:
    """The largest value of `curve` within +-reach frames of each frame."""
    return np.array([curve[max(f - reach, 0): f + reach + 1].max(initial=0.0) for f in frames])


def _merge(times: np.ndarray, salience: np.ndarray, gap: float) -> np.ndarray:
    """Indices of the candidates that stand for an event: candidates closer than `gap` to the
    first (earliest) of their run form one event, represented by its most salient candidate
    (the band that carries the hit dates it best). Increasing in time."""
    groups: list[list[int]] = []
    for i in np.argsort(times, kind="stable"):
        if groups and times[i] - times[groups[-1][0]] < gap:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return np.asarray([max(g, key=lambda i: (salience[i], -times[i])) for g in groups], dtype=int)


def detect_onsets(audio: np.ndarray, sample_rate: int, magnitude: np.ndarray, hop_length: int,
                  min_gap: float = 0.08) -> Onsets:
    """Onsets of a mono signal from its |STFT| (centred frames `hop_length` apart), per band.

    Args:
        audio: mono waveform [N] the spectrum was computed from.
        sample_rate: its rate in Hz.
        magnitude: |STFT| [F, T].
        hop_length: samples between STFT frames.
        min_gap: the density gate in seconds (50-200 ms suits haptics).
    """
    frame_rate = sample_rate / hop_length
    n_fft = 2 * (magnitude.shape[0] - 1)
    loud_start = starts_loud(audio, sample_rate)
    bins = [band_bins(band, n_fft, sample_rate) for band in BANDS.values()]
    presence = band_presence(magnitude, bins)
    novelties = [_novelty(magnitude, b, loud_start) for b in bins]
    half_window = n_fft // 2
    envelopes = [attack_envelope(audio, sample_rate)]
    low = sosfilt(butter(2, BANDS["low"], "bandpass", fs=sample_rate, output="sos"), audio)  # causal: no pre-ringing
    envelopes.append(attack_envelope(low, sample_rate, window=0.02, emphasis=False))
    weights = np.array(list(BAND_WEIGHTS.values()))
    times, frames, salience = [], [], []
    for k, (novelty, ratio) in enumerate(zip(novelties, BAND_RATIOS.values())):
        if presence[k] == 0:
            continue
        peaks = pick_peaks(novelty, frame_rate, min_ratio=ratio)
        inside = novelty[peaks] >= MIN_PEAK
        inside &= peaks * hop_length + half_window <= len(audio)  # a cut-off end leaks broadband, no attack
        if not loud_start:
            inside &= peaks * hop_length >= half_window  # the padding before a noise floor, no attack
        peaks = peaks[inside]
        rise, rise_times = envelopes[1] if k == 0 else envelopes[0]
        times.append(np.clip(refine(peaks / frame_rate, rise, rise_times), 0.0, len(audio) / sample_rate))
        frames.append(peaks)
        salience.append(weights[k] * presence[k] * novelty[peaks])
    times_all = np.concatenate(times) if times else np.zeros(0)
    frames_all = np.concatenate(frames) if frames else np.zeros(0, dtype=int)
    chosen = _merge(times_all, np.concatenate(salience) if salience else np.zeros(0), MERGE_S)
    event_times, event_frames = times_all[chosen], frames_all[chosen]
    reach = max(1, round(MERGE_S * frame_rate))
    bands = np.stack([presence[k] * _at(novelties[k], event_frames, reach) for k in range(len(BANDS))], axis=1) \
        if len(event_times) else np.zeros((0, len(BANDS)))
    strength = (bands * weights).max(axis=1) if len(bands) else np.zeros(0)
    kept = density_gate(event_times, strength, min_gap)
    full = _novelty(magnitude, slice(None), loud_start)
    return Onsets(times=event_times[kept], strength=strength[kept], bands=bands[kept], novelty=full)

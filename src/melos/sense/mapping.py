"""From the analysis to the haptic track: which part of the music drives which layer.

    onsets (per-band flux)        -> transients; amplitude from the onset's strength (its bands,
                                     low hits strongest: they are what a hand or a seat feels),
                                     weighted by the percussive stem (drums drive transients),
                                     accented on downbeats and, softly, on chord changes;
                                     sharpness from the spectral centroid
    beats without an onset        -> softer taps (a fraction of the median onset tap), so the
                                     pulse is felt where nothing is struck
    low-band (40-400 Hz) envelope -> the continuous bed's amplitude (bass drives the bed)
    spectral centroid             -> the bed's frequency (the rest shapes sharpness)
    sections (from an encoder)    -> a per-section scale on both layers, and a per-section
                                     density: the fraction of onset transients kept (strongest
                                     first); beat taps only in sections of full density

Every onset the detector keeps becomes a transient: a preset changes how strong taps are, never
whether a kick is felt. Every transient, beat taps included, is at least the analysis's density
gate (`Analysis.min_gap`) from every other. Each preset is one set of gains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analysis import Analysis
from .track import Continuous, HapticTrack, Transient


@dataclass(frozen=True)
class Preset:
    transient_gain: float  # scale of transient amplitudes
    beat_gain: float  # a beat tap with no onset near it, as a fraction of the median onset tap (0: none)
    downbeat_accent: float  # multiplier on transients at downbeats (beat taps stay under the median onset tap)
    bed_gain: float  # scale of the continuous amplitude
    bed_gamma: float  # amplitude = (envelope / its 95th percentile) ** gamma: < 1 lifts quiet passages
    chord_accent: float = 1.15  # multiplier on onset transients at a chord change (1: none)


PRESETS = {
    "default": Preset(transient_gain=0.9, beat_gain=0.6, downbeat_accent=1.25, bed_gain=0.6, bed_gamma=1.0),
    "subtle": Preset(transient_gain=0.6, beat_gain=0.0, downbeat_accent=1.1, bed_gain=0.35, bed_gamma=1.0,
                     chord_accent=1.0),
    "punchy": Preset(transient_gain=1.0, beat_gain=0.7, downbeat_accent=1.4, bed_gain=0.5, bed_gamma=0.7),
}
BEAT_NEAR_ONSET = 0.05  # seconds: a beat this close to an onset transient is already felt
CHORD_NEAR_ONSET = 0.05  # seconds: an onset this close to a chord change is the change struck
BEAT_CEILING = 0.95  # beat and downbeat taps stay below this fraction of the median onset tap
BED_STEP = 0.02  # seconds between the continuous layer's breakpoints


def to_track(analysis: Analysis, preset: str = "default") -> HapticTrack:
    """The haptic track of `analysis` with the gains of `preset` (see PRESETS)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    p = PRESETS[preset]
    scale = _section_scale(analysis)
    transients = _thinned(analysis, _transients(analysis, p, scale))
    track = HapticTrack(analysis.duration, transients, _bed(analysis, p, scale))
    track.check()
    return track


def _frame(analysis: Analysis, t: float) -> int:
    return min(max(int(round(t / analysis.hop)), 0), len(analysis.rms) - 1)


def _normalised(values: np.ndarray) -> np.ndarray:
    """`values` over their 95th percentile (robust to a few peaks), clipped to 0..1."""
    top = float(np.percentile(values, 95)) if len(values) else 0.0
    return np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)


def _section_scale(analysis: Analysis) -> np.ndarray:
    """Per frame, the intensity of the section it is in (1 outside every section)."""
    scale = np.ones(len(analysis.rms))
    for s in analysis.sections:
        scale[_frame(analysis, s.start):_frame(analysis, s.end) + 1] = s.intensity
    return scale


def _transients(analysis: Analysis, p: Preset, scale: np.ndarray) -> list[Transient]:
    percussive = analysis.stems.get("percussive")
    weight = 0.5 + 0.5 * _normalised(percussive) if percussive is not None else np.ones(len(analysis.rms))
    downbeats = np.asarray(analysis.downbeats)
    changes = np.array([s.start for prev, s in zip(analysis.chords, analysis.chords[1:]) if s.label != prev.label])
    out = []
    for time, strength in zip(analysis.onsets, analysis.onset_strength):
        k = _frame(analysis, time)
        accent = p.downbeat_accent if len(downbeats) and np.min(np.abs(downbeats - time)) < BEAT_NEAR_ONSET else 1.0
        if len(changes) and np.min(np.abs(changes - time)) < CHORD_NEAR_ONSET:
            accent *= p.chord_accent
        intensity = min(1.0, p.transient_gain * strength * weight[k] * accent * scale[k])
        out.append(Transient(float(time), float(intensity), float(analysis.sharpness[k]), "onset"))
    if p.beat_gain > 0:
        out += _beat_taps(analysis, p, scale, out)
    return sorted((t for t in out if 0 <= t.time <= analysis.duration), key=lambda t: t.time)


def _beat_taps(analysis: Analysis, p: Preset, scale: np.ndarray, onsets: list[Transient]) -> list[Transient]:
    """A tap on every beat at least the density gate from every onset transient (and from the
    previous tap), `beat_gain` x the median onset tap (x the accent on downbeats) x the section
    scale, and never above BEAT_CEILING x that median, a loud section's taps included: the pulse is
    felt, softer than what is struck."""
    taps = [t.intensity for t in onsets if t.intensity > 0]
    median = float(np.median(taps)) if taps else p.transient_gain * 0.5
    clearance = max(analysis.min_gap, BEAT_NEAR_ONSET)
    times = np.asarray([t.time for t in onsets])
    downbeats = np.asarray(analysis.downbeats)
    out: list[Transient] = []
    for time in analysis.beats:
        if len(times) and np.min(np.abs(times - time)) < clearance or out and time - out[-1].time < clearance:
            continue
        k = _frame(analysis, time)
        layer = "downbeat" if len(downbeats) and np.min(np.abs(downbeats - time)) < 1e-3 else "beat"
        level = min(p.beat_gain * (p.downbeat_accent if layer == "downbeat" else 1.0), BEAT_CEILING) * median
        intensity = min(level * scale[k], BEAT_CEILING * median, 1.0)
        out.append(Transient(float(time), float(intensity), float(analysis.sharpness[k]), layer))
    return out


def _thinned(analysis: Analysis, transients: list[Transient]) -> list[Transient]:
    """`transients` less, per section of density d < 1, all its beat taps and all but the
    ceil(d * n) strongest of its n onset transients (ties keep the earlier)."""
    dropped: set[int] = set()
    for s in analysis.sections:
        if s.density >= 1:
            continue
        inside = [i for i, t in enumerate(transients) if s.start <= t.time < s.end]
        onsets = [i for i in inside if transients[i].layer == "onset"]
        keep = set(sorted(onsets, key=lambda i: -transients[i].intensity)[:int(np.ceil(s.density * len(onsets)))])
        dropped.update(i for i in inside if i not in keep)
    return [t for i, t in enumerate(transients) if i not in dropped]


def _bed(analysis: Analysis, p: Preset, scale: np.ndarray) -> Continuous:
    """Breakpoints every BED_STEP seconds from 0 to the end: amplitude from the low band, frequency
    from the sharpness curve."""
    times = np.arange(0.0, analysis.duration, BED_STEP)
    if len(times) == 0 or times[-1] < analysis.duration:
        times = np.append(times, analysis.duration)
    frames = np.clip(np.round(times / analysis.hop).astype(int), 0, len(analysis.rms) - 1)
    amplitude = np.clip(p.bed_gain * _normalised(analysis.low_rms)[frames] ** p.bed_gamma * scale[frames], 0.0, 1.0)
    return Continuous(times, amplitude, np.clip(analysis.sharpness[frames], 0.0, 1.0))

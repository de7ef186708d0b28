"""Synthesis recipes for the pitched instruments and how a part's notes become a stem.

Three families:
  Plucked    Karplus-Strong strings (guitar, piano, bass, oud, kanun, sitar, bouzouki, laouto), one
             render per note; courses of 2-3 slightly detuned strings, sitar buzz; glides and
             gamakas bend the rendered note by time-warping it.
  Sustained  bowed, blown and sung lines (flute, violin, clarinet, strings, ney, kemence, voice,
             sarangi, bansuri): one continuous pitch track and amplitude envelope per line,
             played through band-limited wavetables of the recipe's harmonic spectrum, with
             vibrato and breath noise.
  Tanpura    the raga drone: long plucks whose bright jawari band sweeps upward as they decay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .dsp import (SAMPLE_RATE, TABLE, Spectrum, band_noise, buzz, harmonic_table, hz, karplus_strong, oscillator,
                  seconds_to_samples, smooth, warp)
from .score import Note, Part


@dataclass(frozen=True)
class Plucked:
    decay_s: float
    damping: float
    pick: float
    softness_hz: float
    courses: tuple[tuple[float, float], ...] = ((0.0, 1.0),)  # (detune cents, gain) per string
    buzz: float = 0.0
    release_s: float = 0.08


@dataclass(frozen=True)
class Sustained:
    spectrum: Spectrum
    vibrato_hz: float
    vibrato_cents: float  # peak deviation
    attack_s: float = 0.04
    release_s: float = 0.08
    breath: float = 0.0  # noise level relative to the tone
    breath_band: tuple[float, float] = (800.0, 5000.0)


@dataclass(frozen=True)
class Tanpura:
    decay_s: float = 2.5


def _power(p: float, odd_even: float = 1.0) -> Spectrum:
    """Harmonics falling as k^-p; even ones scaled by `odd_even` (a clarinet's closed pipe)."""
    def spectrum(f0: float, k: int) -> np.ndarray:
        n = np.arange(1, k + 1)
        return n ** -p * np.where(n % 2 == 0, odd_even, 1.0)
    return spectrum


def _formants(p: float, peaks: tuple[tuple[float, float, float], ...], floor: float = 0.2) -> Spectrum:
    """Harmonics k^-p shaped by resonances (centre Hz, bandwidth Hz, gain): body or vowel formants."""
    def spectrum(f0: float, k: int) -> np.ndarray:
        n = np.arange(1, k + 1)
        f = n * f0
        env = floor + sum(g * np.exp(-0.5 * ((f - c) / bw) ** 2) for c, bw, g in peaks)
        return n ** -p * env * np.exp(-f / 6000)
    return spectrum


def _clarinet(f0: float, k: int) -> np.ndarray:
    """Odd harmonics strong below ~1.8 kHz (the closed pipe), all of them weaker above."""
    n = np.arange(1, k + 1)
    even = np.where(n * f0 < 1800, 0.1, 0.5)
    return n ** -1.0 * np.where(n % 2 == 0, even, 1.0) * np.exp(-n * f0 / 3000)


INSTRUMENTS: dict[str, Plucked | Sustained | Tanpura] = {
    # western
    "guitar": Plucked(decay_s=1.8, damping=0.55, pick=0.2, softness_hz=2500),
    "piano": Plucked(decay_s=2.5, damping=0.45, pick=0.12, softness_hz=1800, courses=((-1.0, 1.0), (1.0, 1.0))),
    "bass": Plucked(decay_s=1.5, damping=0.8, pick=0.25, softness_hz=700),
    "flute": Sustained(_power(2.5), vibrato_hz=5.0, vibrato_cents=10, breath=0.06, breath_band=(1500, 7000)),
    "violin": Sustained(_formants(1.0, ((450, 200, 1.0), (2800, 900, 0.8))), vibrato_hz=5.5, vibrato_cents=18),
    "clarinet": Sustained(_clarinet, vibrato_hz=5.0, vibrato_cents=14, attack_s=0.03),
    "strings": Sustained(_formants(1.2, ((500, 250, 1.0), (2500, 800, 0.5))), vibrato_hz=5.0, vibrato_cents=8,
                         attack_s=0.25, release_s=0.3),
    # makam
    "oud": Plucked(decay_s=1.0, damping=0.75, pick=0.12, softness_hz=2000, courses=((-1.0, 1.0), (1.0, 1.0))),
    "kanun": Plucked(decay_s=1.3, damping=0.35, pick=0.08, softness_hz=5000,
                     courses=((-1.0, 1.0), (0.0, 1.0), (1.0, 1.0))),
    "ney": Sustained(_power(2.0), vibrato_hz=4.5, vibrato_cents=12, attack_s=0.08, breath=0.25,
                     breath_band=(500, 5000)),
    "kemence": Sustained(_formants(0.8, ((1700, 500, 1.0), (3200, 600, 0.6))), vibrato_hz=6.0, vibrato_cents=15),
    # raga
    "sitar": Plucked(decay_s=2.2, damping=0.25, pick=0.06, softness_hz=6000, buzz=0.6),
    "voice": Sustained(_formants(1.1, ((750, 90, 1.0), (1150, 110, 0.8), (2600, 160, 0.4), (3000, 200, 0.3)), 0.05),
                       vibrato_hz=5.5, vibrato_cents=20, attack_s=0.06),
    "sarangi": Sustained(_formants(0.9, ((900, 300, 1.0), (2500, 600, 0.7))), vibrato_hz=6.0, vibrato_cents=12),
    "bansuri": Sustained(_power(2.3), vibrato_hz=5.0, vibrato_cents=10, attack_s=0.06, breath=0.12),
    "harmonium": Sustained(_formants(0.6, ((1200, 700, 0.7),), 0.4), vibrato_hz=4.0, vibrato_cents=0.0,
                           attack_s=0.05, breath=0.04, breath_band=(2000, 8000)),
    "tanpura": Tanpura(),
    # greek
    "bouzouki": Plucked(decay_s=1.3, damping=0.2, pick=0.1, softness_hz=6000, courses=((-1.5, 1.0), (1.5, 0.8))),
    "laouto": Plucked(decay_s=0.9, damping=0.6, pick=0.15, softness_hz=2500, courses=((-2.0, 1.0), (2.0, 1.0))),
}


def pitch_track(notes: list[Note], n: int, vibrato_hz: float, vibrato_cents: float, phase: float) -> np.ndarray:
    """Cents per sample for consecutive notes (sorted by onset): glides into notes, gamaka
    oscillation, vibrato on long plain notes (fading in after the attack). A gap holds the pitch
    the previous note ended on; a note cut short by the next one ends where that one begins."""
    if not notes:
        return np.zeros(n)
    cents = np.full(n, notes[0].cents)
    starts = [min(n, max(0, seconds_to_samples(note.onset))) for note in notes] + [n]
    for k, note in enumerate(notes):
        s, stop = starts[k], starts[k + 1]
        e = min(stop, seconds_to_samples(note.onset + note.duration))
        if e <= s:
            continue
        local = np.arange(e - s) / SAMPLE_RATE + (s / SAMPLE_RATE - note.onset)
        seg = np.full(e - s, note.cents)
        if note.glide_s > 0 and note.bend_from is not None:
            ramp = np.clip(local / note.glide_s, 0, 1)
            seg += (note.bend_from - note.cents) * 0.5 * (1 + np.cos(np.pi * ramp))
        if note.gamaka_cents > 0:
            after = np.maximum(local - note.glide_s, 0)
            seg += 0.5 * note.gamaka_cents * np.minimum(after / 0.05, 1) * np.sin(2 * np.pi * note.gamaka_hz * after)
        elif note.duration > 0.3:
            fade = np.clip((local - 0.12) / 0.2, 0, 1)
            seg += vibrato_cents * fade * np.sin(2 * np.pi * vibrato_hz * (local + note.onset) + phase)
        cents[s:e] = seg
        cents[e:stop] = seg[-1]
    return cents


def amplitude(notes: list[Note], n: int, attack_s: float, release_s: float) -> np.ndarray:
    """Per-sample level: each note rises over `attack_s` (from a dip when tongued/bowed anew,
    without one when it glides in legato) and, when a rest follows, dies over `release_s`."""
    env = np.zeros(n)
    a, r = max(1, seconds_to_samples(attack_s)), max(1, seconds_to_samples(release_s))
    for i, note in enumerate(notes):
        s = seconds_to_samples(note.onset)
        e = min(n, seconds_to_samples(note.onset + note.duration))
        if e <= s:
            continue
        nxt = seconds_to_samples(notes[i + 1].onset) if i + 1 < len(notes) else n
        legato = note.glide_s > 0 and s > 0 and env[s - 1] > 0
        start = env[s - 1] if legato else 0.4 * env[s - 1] if s > 0 else 0.0
        k = min(a, e - s)
        seg = np.full(e - s, note.velocity)
        seg[:k] = start + (note.velocity - start) * np.arange(1, k + 1) / k
        env[s:e] = seg
        tail = min(r, nxt - e, n - e)
        if tail > 0:
            env[e:e + tail] = note.velocity * (1 - np.arange(1, tail + 1) / r)
    return env


def _line(notes: list[Note], tonic: float, n: int, inst: Sustained, rng: np.random.Generator) -> np.ndarray:
    cents = pitch_track(notes, n, inst.vibrato_hz, inst.vibrato_cents, rng.uniform(0, 2 * np.pi))
    env = smooth(amplitude(notes, n, inst.attack_s, inst.release_s), 0.008)
    tone = oscillator(tonic, cents, inst.spectrum, rng.uniform())
    out = tone / (np.abs(tone).max() + 1e-12)
    if inst.breath > 0:
        out = out + inst.breath * band_noise(rng, n, *inst.breath_band) * 0.3
    return out * env


def _pluck(note: Note, tonic: float, inst: Plucked, rng: np.random.Generator) -> np.ndarray:
    """One plucked note at unit velocity: its courses, buzz, bends and a damped release."""
    m = seconds_to_samples(note.duration + inst.release_s)
    bend = (note.glide_s > 0 and note.bend_from is not None) or note.gamaka_cents > 0
    cents = pitch_track([replace(note, onset=0.0, duration=note.duration + inst.release_s)], m, 0.0, 0.0, 0.0) \
        if bend else None
    length = int(m * 2 ** (max(0.0, cents.max() - note.cents) / 1200)) + 2 if bend else m
    detunes, gains = zip(*inst.courses)
    y = karplus_strong(tuple(hz(tonic, note.cents + np.array(detunes))), length, rng, inst.decay_s, inst.damping,
                       inst.pick, inst.softness_hz, gains)
    if inst.buzz:
        y = buzz(y, inst.buzz)
    if bend:
        y = warp(y, 2 ** ((cents - note.cents) / 1200))
    y = y[:m] / (np.abs(y).max() + 1e-12)
    r = min(m, seconds_to_samples(inst.release_s))
    y[m - r:] *= np.linspace(1, 0, r)
    return y


def _tanpura(notes: list[Note], tonic: float, n: int, inst: Tanpura, rng: np.random.Generator) -> np.ndarray:
    """Each string is rendered once (constant pitch, a dark table fading into a bright jawari
    band that sweeps upward) and the same pluck is laid down at each of its onsets."""
    out = np.zeros(n)
    k = np.arange(1, 41)
    plucks: dict[float, np.ndarray] = {}
    for note in notes:
        if note.cents not in plucks:
            f0 = float(hz(tonic, note.cents))
            kmax = int(0.45 * SAMPLE_RATE / f0)
            m = seconds_to_samples(min(note.duration, 2.5))
            t = np.arange(m) / SAMPLE_RATE
            rolloff = np.where(k <= kmax, np.exp(-k * f0 / 4000), 0.0)
            low = rolloff * k ** -1.2 * (1 + 3.0 * np.exp(-0.5 * ((k - 6) / 2) ** 2))
            high = rolloff * k ** -1.0 * (0.2 + 3.0 * np.exp(-0.5 * ((k - 14) / 4) ** 2))
            cycles = f0 * t + rng.uniform()
            pos = ((cycles - np.floor(cycles)) * TABLE).astype(np.float32)
            i = np.minimum(pos.astype(np.int32), TABLE - 1)  # float32 rounding can reach TABLE itself
            frac = pos - i
            sweep = np.minimum(t / 1.2, 1).astype(np.float32)
            dark, bright = (harmonic_table(a / a.sum()).astype(np.float32) for a in (low, high))
            y = dark[i] + frac * (dark[i + 1] - dark[i])
            y += sweep * (bright[i] + frac * (bright[i + 1] - bright[i]) - y)
            env = np.minimum(1, t / 0.01) * 10 ** (-3 * t / inst.decay_s)
            plucks[note.cents] = y * env / (np.abs(y * env).max() + 1e-12)
        s = seconds_to_samples(note.onset)
        y = plucks[note.cents][:n - s]
        out[s:s + y.size] += note.velocity * y
    return out


def render_pitched(part: Part, tonic: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """A pitched part's dry stem, `n` samples. Notes that started before the clip (negative
    onsets) are rendered from their start and cut at time zero."""
    pre = seconds_to_samples(max([0.0] + [-note.onset for note in part.notes]))
    notes = [replace(note, onset=note.onset + pre / SAMPLE_RATE) for note in part.notes]
    return _render(notes, part.instrument, tonic, n + pre, rng)[pre:]


def _render(notes: list[Note], instrument: str, tonic: float, n: int, rng: np.random.Generator) -> np.ndarray:
    inst = INSTRUMENTS[instrument]
    if isinstance(inst, Tanpura):
        return _tanpura(notes, tonic, n, inst, rng)
    out = np.zeros(n)
    if isinstance(inst, Sustained):
        for voice in sorted({note.voice for note in notes}):
            out += _line([note for note in notes if note.voice == voice], tonic, n, inst, rng)
        return out
    plucks: dict[tuple, np.ndarray] = {}  # a repeated note (strums, tremolo) is rendered once
    for note in notes:
        key = (note.cents, round(note.duration, 3), note.glide_s, note.bend_from, note.gamaka_cents, note.gamaka_hz)
        if key not in plucks:
            plucks[key] = _pluck(note, tonic, inst, rng)
        s = seconds_to_samples(note.onset)
        y = plucks[key][:n - s]
        out[s:s + y.size] += note.velocity * y
    return out

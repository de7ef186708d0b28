"""What SENSE reads from the music: envelopes, brightness, onsets, beats, stems, chords, key, loudness, sections.

Every curve is sampled on one frame grid (`hop` seconds, frame k at time k * hop, centred);
every event time is in seconds from the start of the audio. `Analysis.to_json` is analysis.json.

`analyze` works at ANALYSIS_RATE (24 kHz; other rates are resampled first): there the default
10 ms hop is exactly 240 samples (at librosa's 22050 Hz it would be 220.5), its 12 kHz band
holds the whole 100 Hz-8 kHz sharpness scale, and it is the rate of the melos encoders.

    audio [C, N] ── BS.1770 K-weighting per channel, gates ─────────────> loudness_lufs, short_term_lufs
      └─> mono, 24 kHz ─┬─ 20 ms RMS ──────────────────────────────> rms
                        ├─ 40-400 Hz zero-phase band-pass -> RMS ──> low_rms
                        ├─ |STFT| (1024, hop) ─┬─ centroid ────────> centroid, sharpness
                        │                      └─ flux per band -> peaks -> refine -> merge -> gate ─> onsets
                        │                             └─ beat tracker ──> beats, downbeats, tempo
                        ├─ CQT chroma (~0.1 s) -> triad templates -> Viterbi -> snap to onsets ─> chords
                        │                     └─ mean chroma + chord tones -> Krumhansl-Kessler ─> key, key_confidence
                        └─ HPSS -> stems -> 20 ms RMS ─────────────> stems

Loudness is measured on the channels as given (at most 5, BS.1770's L R C Ls Rs; more are
averaged to mono first), at the given rate; everything else on the mono mix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import soxr
import torch

from ..audio import load
from .beats import parse_beats, track_beats
from .features import LOW_BAND, band_pass, frame_rms, sharpness, spectral_centroid, stft_magnitude
from .harmony import ChordSegment, analyze_harmony
from .loudness import CHANNEL_GAINS, SHORT_TERM_RATE, integrated_loudness, short_term_loudness
from .onsets import BANDS, detect_onsets, spectral_flux
from .stems import parse_stems, separate

ANALYSIS_RATE = 24000  # Hz
RMS_WINDOW = 0.02  # seconds: the RMS envelopes' window (10-20 ms suits haptics)
N_FFT = 1024  # samples (43 ms at 24 kHz): the STFT for brightness and onset flux


@dataclass
class Section:
    start: float  # seconds
    end: float
    tags: dict[str, float] = field(default_factory=dict)  # tag -> probability, from a probe
    intensity: float = 1.0  # scale applied to this section's haptics (0..1.5)
    density: float = 1.0  # fraction of its onset transients kept, strongest first (0..1); beat taps only at 1


@dataclass
class Analysis:
    """The analysis of one recording (fields documented for analysis.json).

    sample_rate: rate the audio was analysed at (Hz); duration: seconds; hop: frame hop (s).
    rms / low_rms: RMS envelope (10-20 ms window) of the mix and of its 40-400 Hz band, [T].
    centroid: spectral centroid in Hz, [T]; sharpness: it mapped to 0..1 (log-frequency), [T].
    onsets / onset_strength: onset times (s), dated at the attack, and their strength (0..1): the
        largest of their bands' strengths, each weighted by how much that band is felt
        (melos.sense.onsets.BAND_WEIGHTS: low 1, mid 0.75, high 0.5); no two closer than `min_gap`.
    onset_bands: per onset, each band's (low 30-150 Hz, mid 150-2500 Hz, high 2.5-12 kHz) own
        normalised spectral flux there, 0..1, [K, 3]; empty when unknown.
    min_gap: the density gate (s) the onsets went through, which the haptic track keeps too.
    beats / downbeats: times (s), downbeats a subset of beats; tempo: beats per minute (0 when none found).
    stems: per stem (e.g. "harmonic", "percussive") its RMS envelope on the same scale as rms, [T].
    sections: from a melos encoder when one was given, else empty.
    chords: consecutive `ChordSegment`s (start, end in s; Harte label "C:maj", "A:min" or "N" for
        no chord) from 0 to the end; changes are moved onto an onset within one chroma hop (~0.1 s).
    key: "C major" ... "B minor" as mir_eval.key reads it ("" when unknown); key_confidence: the
        correlation (0..1) of the track's pitch-class profile with that key's Krumhansl-Kessler profile.
    loudness_lufs: integrated loudness (ITU-R BS.1770-4, gated) of the channels as given; None
        when unknown or shorter than 400 ms, -inf for digital silence (null in analysis.json).
    short_term_lufs: 3 s loudness (LUFS, floor -70) every 1 / short_term_rate s (10 Hz), [T10].
    backends: what produced "onsets", "beats", "downbeats", "stems" and "chords" (e.g. "librosa",
        "bar-phase-heuristic", "beat-this:<checkpoint file name>", "hpss", "none", "chroma-templates").
    """

    sample_rate: int
    duration: float
    hop: float
    rms: np.ndarray
    low_rms: np.ndarray
    centroid: np.ndarray
    sharpness: np.ndarray
    onsets: np.ndarray
    onset_strength: np.ndarray
    beats: np.ndarray
    downbeats: np.ndarray
    tempo: float
    onset_bands: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    min_gap: float = 0.08
    stems: dict[str, np.ndarray] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    backends: dict[str, str] = field(default_factory=dict)  # e.g. {"beats": "librosa", "stems": "hpss"}
    chords: list[ChordSegment] = field(default_factory=list)
    key: str = ""
    key_confidence: float = 0.0
    loudness_lufs: float | None = None
    short_term_lufs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    short_term_rate: float = SHORT_TERM_RATE

    @property
    def times(self) -> np.ndarray:
        """Frame times (s), [T]."""
        return np.arange(len(self.rms)) * self.hop

    def to_json(self) -> dict:
        def r(x: np.ndarray) -> list[float]:
            return [round(float(v), 5) for v in x]

        return {"sample_rate": self.sample_rate, "duration": self.duration, "hop": self.hop,
                "rms": r(self.rms), "low_rms": r(self.low_rms), "centroid_hz": r(self.centroid),
                "sharpness": r(self.sharpness), "onsets": r(self.onsets), "onset_strength": r(self.onset_strength),
                "onset_bands": {name: r(self.onset_bands[:, k]) if len(self.onset_bands) else []
                                for k, name in enumerate(BANDS)}, "min_gap": self.min_gap,
                "beats": r(self.beats), "downbeats": r(self.downbeats), "tempo_bpm": round(self.tempo, 3),
                "stems": {k: r(v) for k, v in self.stems.items()},
                "sections": [{"start": s.start, "end": s.end, "tags": s.tags, "intensity": s.intensity,
                              "density": s.density}
                             for s in self.sections],
                "chords": [{"start": round(s.start, 5), "end": round(s.end, 5), "label": s.label} for s in self.chords],
                "key": self.key, "key_confidence": round(self.key_confidence, 4),
                "loudness_lufs": round(self.loudness_lufs, 3) if self.loudness_lufs is not None
                and np.isfinite(self.loudness_lufs) else None,
                "short_term_lufs": [round(float(v), 3) for v in self.short_term_lufs],
                "short_term_rate": self.short_term_rate,
                "backends": self.backends}


def analyze(audio: np.ndarray | torch.Tensor, sample_rate: int, *, hop: float = 0.01, min_gap: float = 0.08,
            beats: str = "librosa", stems: str = "hpss") -> Analysis:
    """Analyse one recording for haptics (see the module docstring for the data flow).

    Args:
        audio: waveform [N] or [C, N], any rate; loudness is measured on the channels, the rest
            on their average.
        sample_rate: its rate in Hz; the analysis runs at ANALYSIS_RATE.
        hop: frame hop in seconds, 1-20 ms; rounded to whole samples at ANALYSIS_RATE, and
            `Analysis.hop` is the value used.
        min_gap: the onset density gate in seconds: of two onsets closer than this, the weaker
            is dropped (50-200 ms suits haptics; 0 keeps all).
        beats: "librosa" or "beat-this:PATH" (a checkpoint file you downloaded).
        stems: "hpss", "none" or "demucs:PATH" (recognised, not supported).

    Raises:
        ValueError: empty or non-finite audio, a setting out of range or a malformed backend.
        FileNotFoundError: a backend's checkpoint file does not exist.
    """
    parse_beats(beats)
    parse_stems(stems)  # both raise before any work is done
    if not 0.001 <= hop <= 0.02:
        raise ValueError(f"hop must be 1-20 ms (haptic timing needs a fine grid), got {hop:g} s")
    if not 0 <= min_gap <= 1:
        raise ValueError(f"min_gap must be 0-1 s (50-200 ms suits haptics), got {min_gap:g} s")
    x = _mono(audio, sample_rate)
    loudness_audio = _loudness_channels(audio, x, sample_rate)
    hop_length = round(hop * ANALYSIS_RATE)
    frame_rate = ANALYSIS_RATE / hop_length
    window_length = round(RMS_WINDOW * ANALYSIS_RATE)

    magnitude = stft_magnitude(x, N_FFT, hop_length)  # [F, T]
    centroid = spectral_centroid(magnitude, ANALYSIS_RATE)
    onsets = detect_onsets(x, ANALYSIS_RATE, magnitude, hop_length, min_gap)
    low_bins = slice(*(int(np.ceil(f * N_FFT / ANALYSIS_RATE)) for f in LOW_BAND))
    low_flux = spectral_flux(magnitude, low_bins)
    found = track_beats(beats, x, ANALYSIS_RATE, onsets.novelty, low_flux / max(float(low_flux.max()), 1e-20),
                        frame_rate, onsets.times)
    harmony = analyze_harmony(x, ANALYSIS_RATE, onsets=onsets.times)
    return Analysis(
        sample_rate=ANALYSIS_RATE, duration=len(x) / ANALYSIS_RATE, hop=hop_length / ANALYSIS_RATE,
        rms=frame_rms(x, hop_length, window_length),
        low_rms=frame_rms(band_pass(x, ANALYSIS_RATE, LOW_BAND), hop_length, window_length),
        centroid=centroid, sharpness=sharpness(centroid), onsets=onsets.times, onset_strength=onsets.strength,
        onset_bands=onsets.bands, min_gap=min_gap, beats=found.times, downbeats=found.downbeats, tempo=found.tempo,
        stems=separate(stems, x, ANALYSIS_RATE, hop_length, window_length),
        backends={"onsets": "band-wise-spectral-flux", "beats": found.backend,
                  "downbeats": "bar-phase-heuristic" if found.backend == "librosa" else found.backend,
                  "stems": stems.partition(":")[0], "chords": "chroma-templates"},
        chords=harmony.chords, key=harmony.key, key_confidence=harmony.key_confidence,
        loudness_lufs=integrated_loudness(*loudness_audio), short_term_lufs=short_term_loudness(*loudness_audio))


def analyze_file(path: str | os.PathLike, *, hop: float = 0.01, min_gap: float = 0.08, beats: str = "librosa",
                 stems: str = "hpss", allow_truncated: bool = False) -> Analysis:
    """`analyze` a file any `melos.audio.load` reads, decoded at ANALYSIS_RATE with its channels
    (for the loudness; the rest is analysed on their average).

    Raises:
        AudioError: the file is missing, unreadable or truncated (unless `allow_truncated`).
    """
    parse_beats(beats)
    parse_stems(stems)  # a bad setting is reported before a long file is decoded
    audio = load(path, ANALYSIS_RATE, mono=False, allow_truncated=allow_truncated)
    return analyze(audio, ANALYSIS_RATE, hop=hop, min_gap=min_gap, beats=beats, stems=stems)


def _mono(audio: np.ndarray | torch.Tensor, sample_rate: int) -> np.ndarray:
    """float64 mono samples [N] at ANALYSIS_RATE from [N] or [C, N] at `sample_rate`."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().float().numpy()
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1:
        raise ValueError(f"audio must be [N] or [C, N], got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("audio is empty")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    if sample_rate != ANALYSIS_RATE:
        audio = soxr.resample(audio, sample_rate, ANALYSIS_RATE, quality="HQ")
    return audio


def _loudness_channels(audio: np.ndarray | torch.Tensor, mono: np.ndarray,
                       sample_rate: int) -> tuple[np.ndarray, int]:
    """What the loudness is measured on: the audio as given, [N] or [C, N] at `sample_rate`
    (validated by `_mono` already), or `mono` at ANALYSIS_RATE for more channels than BS.1770 weights."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu().float().numpy()
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1 or audio.shape[0] <= len(CHANNEL_GAINS):
        return audio, sample_rate
    return mono, ANALYSIS_RATE

"""The DSP beat tracker behind `beats=librosa`: the metrical level chosen by the music, beats to its end.

    audio ─ mel |STFT| ─ log rise ─┬─ full band ─────────────────────┐
                                   ├─ low  (30-150 Hz: kick, bass)   ┼─ sum ─ autocorrelation ─ tempi
                                   └─ mid  (150-4000 Hz: snare, ...) ┘
    each candidate ─ librosa's dynamic-programming tracker (Ellis 2007) on the sum, untrimmed ─ beats
    the level: best fit of its beats to the accents x a broad prior around 120 BPM, less its bend;
               one octave slower when the slower beats alternate kick and snare (a backbeat)
    beats kept only where there is sound

Why: librosa's `beat_track` as it comes takes the tempo from the autocorrelation of a full-band
onset envelope weighted by a prior around 120 BPM. Off-beat hats fill the eighth notes and a kick
on 1 and 3 marks the half notes, so both neighbours of the beat are periodic too, and it doubled or
halved the drum loops (90 -> 180 BPM, 120 -> 60, 150 -> 75); and it trims beats whose onset
strength is weak, which dropped the last 3-20 s of real tracks.

Here every strong periodicity (and its double) is tracked and judged by what its beats land on.
Each band's curve is scaled on its own, so a kick 18 dB under the snare is as much an accent as
the snare; the accents are the peaks of the largest of the three curves. A level's fit is the
F-measure between its beats and the accents: precision is the mean accent under its beats (a
level twice too fast puts every other beat on a hat or on nothing), recall the share of accent
strength that a beat meets (a level twice too slow misses every other kick or snare). "Meets" is
within 50 ms or a tenth of the period, whichever is less, so a fast level does not cover more of
the music by chance. The tracker may bend a level's grid to reach accents; a level it bends a lot
(every level slower than the pulse of a 2+2+3 aksak metre) is penalised. Where accents fall on
every eighth note, as a rock beat's hats and kicks can, the backbeat decides: a steady level whose
consecutive beats alternate low- and mid-band accents is the beat and its double a subdivision.
The prior is mild (1.5 octaves per unit of log-likelihood squared), so that fast isochronous
pulses (the synthetic makam and greek eighths at 200-330 BPM) win when nothing slower keeps time
with the music.

librosa's last beats are not trimmed by strength; instead beats are dropped where the audio is
more than SILENCE_DB under its loudest frame, so beats run to the end of a fade-out and stop where
the music does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

ENVELOPE_RATE = 100.0  # onset-envelope frames per second
N_FFT = 2048
N_MELS = 80
MEL_RANGE = (20.0, 12000.0)  # Hz
LOW_BAND = (30.0, 150.0)  # Hz: kick drum, bass
MID_BAND = (150.0, 4000.0)  # Hz: snare, chords, melody
COMPRESSION = 1000.0  # log1p(COMPRESSION x magnitude / max): about 60 dB of range
WINDOW_LEAD_S = 0.02  # a centred N_FFT window's log rise peaks this long before the attack (see onset_envelopes)
DETREND_S = 1.0  # the envelopes' moving mean over this window is removed
TEMPO_RANGE = (30.0, 480.0)  # BPM searched
N_PEAKS = 6  # strongest autocorrelation peaks tracked, with their doubles and the prior's favourite
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.5  # log-normal tempo prior: centre and spread
ACCENT_FLOOR = 0.3  # an accent is a peak of `Envelopes.accent` above this (1 = a band's 95th percentile)
ACCENT_S = 0.05  # a beat meets an accent this close ...
ACCENT_SHARE = 0.1  # ... or within this share of the period, if less
BACKBEAT_MIN, BACKBEAT_GAIN = 0.25, 0.1  # how clearly the slower level must alternate kick and snare
BEND_WEIGHT = 2.0  # log-score lost per unit of `bend`
STEADY_BEND = 0.05  # a bend this small is steady (frame rounding alone bends a 96 BPM grid by 0.016)
SILENCE_DB = 40.0  # frames this far under the loudest one carry no beats (1% RMS, where
                   # benchmarks/sense_alignment.py ends the music) ...
SOUND_S = 0.1  # ... unless sound is this close (a beat's frame may sit just before its attack)
RMS_S = 0.1  # RMS window: long enough that the gaps between a quiet passage's notes are not silence


@dataclass
class Envelopes:
    """Onset envelopes on one frame grid, each scaled so the 95th percentile of its non-zero values is 1."""

    full: np.ndarray  # [T]
    low: np.ndarray  # [T]
    mid: np.ndarray  # [T]
    sample_rate: int  # of the audio they were computed from
    hop_length: int  # samples per frame

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def beat(self) -> np.ndarray:
        """What the beats are tracked on: all three bands at equal weight [T]."""
        return self.full + self.low + self.mid

    @property
    def accent(self) -> np.ndarray:
        """The largest of the three curves: a kick, a snare or a broadband hit alike [T]."""
        return np.maximum(np.maximum(self.low, self.mid), self.full)


@dataclass
class BeatTrack:
    times: np.ndarray  # beat times (s), increasing
    tempo: float  # the tempo the level was tracked at (BPM), 0 when there are no beats


def onset_envelopes(audio: np.ndarray, sample_rate: int) -> Envelopes:
    """Half-wave-rectified rise of log-compressed mel magnitudes, full band and per band, detrended."""
    import librosa

    hop_length = max(1, round(sample_rate / ENVELOPE_RATE))
    fmax = min(MEL_RANGE[1], sample_rate / 2)
    mel = librosa.feature.melspectrogram(y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=N_FFT,
                                         hop_length=hop_length, n_mels=N_MELS, fmin=MEL_RANGE[0], fmax=fmax,
                                         power=1.0)  # [M, T]
    log_mel = np.log1p(COMPRESSION / max(float(mel.max()), 1e-20) * mel)
    rise = np.maximum(np.diff(log_mel, axis=1, prepend=log_mel[:, :1]), 0.0)
    # The log magnitude of an 85 ms window climbs as soon as an attack enters it, so its steepest
    # rise comes before the window is centred on the attack: the beats came out 17-20 ms early on
    # the drum loops and the synthetic western clips. Delay the curves by that much.
    lead = round(WINDOW_LEAD_S * sample_rate / hop_length)
    rise = np.pad(rise, ((0, 0), (lead, 0)))[:, :rise.shape[1]]
    centres = librosa.mel_frequencies(N_MELS + 2, fmin=MEL_RANGE[0], fmax=fmax)[1:-1]
    frame_rate = sample_rate / hop_length

    def curve(rows: np.ndarray) -> np.ndarray:
        flux = rise[rows].mean(axis=0) if np.any(rows) else np.zeros(rise.shape[1])
        flux = np.maximum(flux - uniform_filter1d(flux, max(1, round(DETREND_S * frame_rate))), 0.0)
        scale = np.percentile(flux[flux > 0], 95) if np.any(flux > 0) else 1.0
        return flux / scale

    everything = np.ones(N_MELS, dtype=bool)
    low = (centres >= LOW_BAND[0]) & (centres < LOW_BAND[1])
    mid = (centres >= MID_BAND[0]) & (centres < MID_BAND[1])
    return Envelopes(curve(everything), curve(low), curve(mid), sample_rate, hop_length)


def autocorrelation(envelope: np.ndarray) -> np.ndarray:
    """Unbiased autocorrelation [T] of a curve, 1 at lag 0."""
    centred = envelope - envelope.mean()
    n = len(centred)
    spectrum = np.fft.rfft(centred, 2 * n)
    acf = np.fft.irfft(np.abs(spectrum) ** 2)[:n] / (n - np.arange(n))  # each lag's mean product
    return acf / max(float(acf[0]), 1e-20)


def log_prior(bpm: float) -> float:
    """Log of the log-normal tempo prior (0 at PRIOR_BPM)."""
    return -0.5 * (np.log2(bpm / PRIOR_BPM) / PRIOR_OCTAVES) ** 2


def candidate_tempi(acf: np.ndarray, frame_rate: float) -> list[float]:
    """Tempi (BPM) of the N_PEAKS strongest autocorrelation peaks in TEMPO_RANGE and of the one the
    prior prefers, the double of each and half the preferred one, each refined between frames;
    none closer than 3% to another."""
    lo = max(1, int(60 * frame_rate / TEMPO_RANGE[1]))
    hi = min(len(acf) - 2, int(np.ceil(60 * frame_rate / TEMPO_RANGE[0])))
    if hi <= lo:
        return []
    lags = np.arange(lo, hi + 1)
    values = acf[lags]
    peaks = lags[(values >= acf[lags - 1]) & (values > acf[lags + 1])]
    if len(peaks) == 0:
        return []
    preferred = max(peaks, key=lambda k: acf[k] + log_prior(60 * frame_rate / k))
    chosen = sorted(peaks, key=lambda k: -acf[k])[:N_PEAKS]
    tempi: list[float] = []
    for lag in [preferred, *chosen, preferred * 2, *(k / 2 for k in [preferred, *chosen])]:
        bpm = 60 * frame_rate / refine_lag(acf, lag)
        if TEMPO_RANGE[0] <= bpm <= TEMPO_RANGE[1] and all(abs(bpm / t - 1) > 0.03 for t in tempi):
            tempi.append(bpm)
    return tempi


def refine_lag(acf: np.ndarray, lag: float, spread: float = 0.06) -> float:
    """The autocorrelation's largest value within `spread` of `lag`, placed between frames by a parabola."""
    lo = max(1, int(lag * (1 - spread)))
    hi = min(len(acf) - 2, int(np.ceil(lag * (1 + spread))))
    if hi < lo:
        return float(lag)
    k = lo + int(np.argmax(acf[lo:hi + 1]))
    left, centre, right = acf[k - 1], acf[k], acf[k + 1]
    curvature = left - 2 * centre + right
    shift = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return k + float(np.clip(shift, -0.5, 0.5))


def track_at(envelopes: Envelopes, bpm: float) -> np.ndarray:
    """librosa's dynamic-programming beats (s) at `bpm`, untrimmed: they run from start to end.

    The envelope is followed by two beat periods of zeros: librosa backtracks from the last local
    maximum of its cumulative score, which at the very last frame would end the path with a beat
    on nothing and a skipped beat before it; through the zeros the path keeps its period, and the
    beats in them are dropped.
    """
    import librosa

    envelope = envelopes.beat
    padded = np.concatenate([envelope, np.zeros(round(2 * 60 * envelopes.frame_rate / bpm))])
    _, frames = librosa.beat.beat_track(onset_envelope=padded, sr=envelopes.sample_rate,
                                        hop_length=envelopes.hop_length, bpm=bpm, trim=False, units="frames")
    frames = np.asarray(frames)
    return frames[frames < len(envelope)].astype(float) / envelopes.frame_rate


def reach(beats: np.ndarray, frame_rate: float) -> int:
    """Frames either side of a beat that count as on it: ACCENT_S, or ACCENT_SHARE of a fast level's period."""
    period = float(np.median(np.diff(beats))) if len(beats) > 1 else np.inf
    return max(1, round(min(ACCENT_S, ACCENT_SHARE * period) * frame_rate))


def near_beats(curve: np.ndarray, beats: np.ndarray, frame_rate: float) -> np.ndarray:
    """The curve's largest value within `reach` of each beat [K]."""
    frames = np.clip(np.round(beats * frame_rate).astype(int), 0, len(curve) - 1)
    return maximum_filter1d(curve, 2 * reach(beats, frame_rate) + 1)[frames]


def accent_fit(beats: np.ndarray, envelopes: Envelopes) -> float:
    """F-measure between beats and the accents (see the module docstring); 0 without either."""
    accent = np.minimum(envelopes.accent, 1.0)
    frame_rate = envelopes.frame_rate
    is_peak = (accent >= maximum_filter1d(accent, 2 * round(ACCENT_S * frame_rate) + 1)) & (accent > ACCENT_FLOOR)
    peaks = np.flatnonzero(is_peak)
    if len(beats) == 0 or len(peaks) == 0:
        return 0.0
    precision = float(near_beats(accent, beats, frame_rate).mean())
    distance = np.abs(peaks[:, None] - np.round(beats * frame_rate)[None, :]).min(axis=1)  # [P] frames
    recall = float(accent[peaks][distance <= reach(beats, frame_rate)].sum() / accent[peaks].sum())
    return 2 * precision * recall / max(precision + recall, 1e-12)


def backbeat(beats: np.ndarray, envelopes: Envelopes) -> float:
    """How strongly consecutive beats alternate low- and mid-band accents: |mean((low - mid) x (-1)^k)|,
    0 (none) to 1 (kick, snare, kick, snare)."""
    if len(beats) < 2:
        return 0.0
    low = np.minimum(near_beats(envelopes.low, beats, envelopes.frame_rate), 1.0)
    mid = np.minimum(near_beats(envelopes.mid, beats, envelopes.frame_rate), 1.0)
    return float(abs(np.mean((low - mid) * (-1.0) ** np.arange(len(beats)))))


def bend(beats: np.ndarray) -> float:
    """How far the tracker bent a level's grid to meet the music: the mean change between consecutive
    inter-beat intervals over the mean interval (0 for a steady grid)."""
    if len(beats) < 3:
        return 0.0
    intervals = np.diff(beats)
    return float(np.abs(np.diff(intervals)).mean() / intervals.mean())


def sounding(audio: np.ndarray, envelopes: Envelopes) -> np.ndarray:
    """Per frame of `envelopes`, whether sound lies within SOUND_S: the audio's RMS within SILENCE_DB
    of its loudest frame [T]."""
    import librosa

    frame_length = max(2, round(RMS_S * envelopes.sample_rate))
    rms = librosa.feature.rms(y=np.asarray(audio, dtype=np.float32), frame_length=frame_length,
                              hop_length=envelopes.hop_length)[0]
    loud = rms > rms.max() * 10 ** (-SILENCE_DB / 20)
    reach = round(SOUND_S * envelopes.frame_rate)
    return maximum_filter1d(loud.astype(np.uint8), 2 * reach + 1).astype(bool)  # centred frames, as the mel's


def dsp_beats(audio: np.ndarray, sample_rate: int) -> BeatTrack:
    """Beats of a mono waveform [N] at the metrical level its accents support (see the module docstring)."""
    if not np.any(audio):
        return BeatTrack(np.zeros(0), 0.0)
    envelopes = onset_envelopes(audio, sample_rate)
    tempi = candidate_tempi(autocorrelation(envelopes.beat), envelopes.frame_rate)
    if not tempi:
        return BeatTrack(np.zeros(0), 0.0)
    levels = {bpm: track_at(envelopes, bpm) for bpm in tempi}
    best = max(tempi, key=lambda bpm: np.log(accent_fit(levels[bpm], envelopes) + 1e-3) + log_prior(bpm)
               - BEND_WEIGHT * bend(levels[bpm]))
    slower = next((bpm for bpm in tempi if abs(bpm / (best / 2) - 1) < 0.04), best / 2)
    if slower >= TEMPO_RANGE[0]:
        levels.setdefault(slower, track_at(envelopes, slower))
        alternation = backbeat(levels[slower], envelopes)
        if (alternation >= BACKBEAT_MIN and alternation >= backbeat(levels[best], envelopes) + BACKBEAT_GAIN
                and bend(levels[slower]) <= max(bend(levels[best]), STEADY_BEND)):
            best = slower
    beats = levels[best]
    loud = sounding(audio, envelopes)
    beats = beats[loud[np.clip(np.round(beats * envelopes.frame_rate).astype(int), 0, len(loud) - 1)]]
    return BeatTrack(beats, float(best) if len(beats) else 0.0)

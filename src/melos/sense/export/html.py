"""`sense.html`: one offline page per track to see, hear and (on phones) feel its analysis.

The page is a single file with nothing fetched: its style, script and data are inline and the
audio is embedded, so it can be mailed, opened from disk or served anywhere.

    <script id="sense-data"  type="application/json">   the lanes' data (below)
    <script id="sense-audio" type="text/plain">         the audio: Ogg Opus, base64

The audio is Ogg Opus at 48 kHz (the only rates Opus has), stereo (other channel counts are
averaged to mono), about 32 kbit/s per channel: 60 s of stereo is ~0.5 MB and a 3-4 min track
~1.5-2 MB before base64 (x 4/3). Ogg Opus starts sample-exact (its pre-skip is in the header), so
the page's clock is the analysis's clock. Curves are shipped as bytes: display does not need
more than 256 levels, and 24,000 frames of a 4-minute track are then 32 kB of base64 each.

Data (times in seconds; "curve" = {"step": s, "scale": max, "bytes": base64 uint8}, value k at
time k * step = byte / 255 * scale):

    title, duration, tempo, backends
    waveform      {"step", "peak", "min", "max"}: per step, the mono mix's min and max as int8
                  base64 (sample = byte / 127 * peak)
    spectrogram   {"levels": [{"step", "tiles": [{"column", "png": data URI}]}], "fmin", "fmax",
                  "db_range", "ticks": [[Hz, height fraction]], "palette": [9 colours, low to high]}:
                  log-mel power (dB below the loudest bin, over db_range), low bins at the bottom;
                  levels finest first (SPECTROGRAM_STEP s a column, then pooled by LEVEL_FACTOR
                  until MAX_COLUMNS hold the track), each cut into PNG tiles of TILE_COLUMNS, so
                  the page draws every zoom from the level nearest its pixel size
    curves        sharpness, stem:<name> (RMS envelopes), bed:amplitude, bed:frequency (the
                  continuous layer sampled on the analysis's frame grid)
    onsets        {"time", "strength"}; beats, downbeats: [times]
    transients    {"time", "intensity", "sharpness", "layer"}: the haptic track's, in time order
    sections      [{"start", "end", "tags", "intensity", "density"}] (empty without --model)
    chords        {"start", "end", "label"}: Harte labels ("C:maj", "A:min", "N"); key, key_confidence
    loudness      {"integrated": LUFS or null, "rate": Hz, "short_term": [LUFS]} (ITU-R BS.1770)

`page/sense.js` draws it; `page/template.html` and `page/sense.css` are its frame.
"""

from __future__ import annotations

import base64
import html
import io
import json
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
import soundfile as sf
import soxr

from ...utils.atomic import write_text
from ..analysis import Analysis
from ..track import HapticTrack

OPUS_RATE = 48000  # Hz: Opus codes 8, 12, 16, 24 or 48 kHz
OPUS_LEVEL = 0.9  # libsndfile's compression level for Opus: 0.9 is ~32 kbit/s per channel
TIME_DECIMALS = 5  # 10 us, as analysis.json
N_MELS = 96
FMIN = 30.0  # Hz: the spectrogram's lowest mel band
SPECTROGRAM_STEP = 0.02  # s per column of the finest spectrogram: ~2 px a column in the 10 s view
LEVEL_FACTOR = 4  # each coarser spectrogram pools this many columns of the one before
MAX_COLUMNS = 3000  # the coarsest spectrogram has at most this many columns (the whole-track view)
TILE_COLUMNS = 2048  # columns per PNG tile
SPECTROGRAM_DB = 80.0  # dynamic range shown, below the loudest bin
SPECTROGRAM_FLOOR_DB = -120.0  # power (dB) drawn black however quiet the file is
PAGE = resources.files("melos.sense.export") / "page"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _curve(values: np.ndarray, step: float) -> dict:
    """A non-negative curve as uint8 bytes over its maximum (see the module docstring)."""
    values = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, None)
    scale = float(values.max()) if len(values) else 0.0
    q = np.round(values / scale * 255) if scale > 0 else np.zeros(len(values))
    return {"step": step, "scale": round(scale, 8), "bytes": _b64(q.astype(np.uint8).tobytes())}


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    return audio.mean(axis=0) if audio.ndim == 2 else audio


def _waveform(mono: np.ndarray, sample_rate: int, step: float) -> dict:
    """Min and max of the mix per `step` seconds, int8 over the peak."""
    n_per = max(1, round(step * sample_rate))
    n_steps = max(1, -(-len(mono) // n_per))
    padded = np.zeros(n_steps * n_per)
    padded[:len(mono)] = mono
    blocks = padded.reshape(n_steps, n_per)  # [steps, samples per step]
    peak = float(np.abs(mono).max()) if len(mono) else 0.0
    lo, hi = (np.round(blocks.min(axis=1) / peak * 127), np.round(blocks.max(axis=1) / peak * 127)) if peak > 0 \
        else (np.zeros(n_steps), np.zeros(n_steps))
    return {"step": n_per / sample_rate, "peak": round(peak, 8),
            "min": _b64(lo.astype(np.int8).tobytes()), "max": _b64(hi.astype(np.int8).tobytes())}


def _png(level: np.ndarray) -> str:
    """A data URI of `level` [rows, columns] in 0..1 (top row first) as an indexed-colour PNG (magma)."""
    from PIL import Image

    image = Image.fromarray(np.round(level * 255).astype(np.uint8), mode="P")
    image.putpalette((_magma(256) * 255).round().astype(np.uint8).tobytes())
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    return "data:image/png;base64," + _b64(png.getvalue())


def _magma(n: int) -> np.ndarray:
    """n colours of matplotlib's magma, [n, 3] in 0..1."""
    from matplotlib import colormaps

    return colormaps["magma"](np.linspace(0, 1, n))[:, :3]


def _frequency_ticks(fmin: float, fmax: float) -> list[list]:
    """[[Hz, height fraction of the lane (0 bottom)], ...] for round frequencies, on the mel rows:
    row k (from the bottom) is centred at (k + 0.5) / N_MELS of the lane's height."""
    import librosa

    centres = librosa.mel_frequencies(N_MELS + 2, fmin=fmin, fmax=fmax)[1:-1]  # librosa's (Slaney) mel
    rows = (np.arange(N_MELS) + 0.5) / N_MELS
    ticks = [hz for hz in (100, 500, 1000, 2000, 5000, 10000) if centres[0] <= hz <= centres[-1]]
    position = np.interp(librosa.hz_to_mel(np.array(ticks, dtype=float)), librosa.hz_to_mel(centres), rows)
    return [[hz, round(float(y), 4)] for hz, y in zip(ticks, position)]


def _spectrogram(mono: np.ndarray, sample_rate: int) -> dict:
    """The log-mel spectrogram as PNG tiles at several time resolutions (see `page_data`)."""
    import librosa

    hop_length = max(1, round(SPECTROGRAM_STEP * sample_rate))
    fmax = min(sample_rate / 2, 12000.0)
    mel = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=sample_rate, n_fft=2048,
                                         hop_length=hop_length, n_mels=N_MELS, fmin=FMIN, fmax=fmax)  # [M, T]
    top = max(10 * np.log10(max(float(mel.max()), 1e-12)), SPECTROGRAM_FLOOR_DB + SPECTROGRAM_DB)  # silence stays dark
    levels, pool = [], 1
    while True:
        n_columns = -(-mel.shape[1] // pool)
        padded = np.zeros((N_MELS, n_columns * pool), dtype=np.float64)
        padded[:, :mel.shape[1]] = mel
        power = padded.reshape(N_MELS, n_columns, pool).mean(axis=2)  # [M, columns]: mean power per column
        db = 10 * np.log10(np.maximum(power, 1e-12))
        level = np.clip((db - (top - SPECTROGRAM_DB)) / SPECTROGRAM_DB, 0.0, 1.0)[::-1]  # low bins at the bottom
        levels.append({"step": pool * hop_length / sample_rate,
                       "tiles": [{"column": c, "png": _png(level[:, c:c + TILE_COLUMNS])}
                                 for c in range(0, n_columns, TILE_COLUMNS)]})
        if n_columns <= MAX_COLUMNS:
            break
        pool *= LEVEL_FACTOR
    return {"levels": levels, "fmin": FMIN, "fmax": fmax, "db_range": SPECTROGRAM_DB,
            "ticks": _frequency_ticks(FMIN, fmax),
            "palette": ["#%02x%02x%02x" % tuple(c) for c in (_magma(9) * 255).round().astype(int)]}


def _chords(analysis: Analysis) -> dict:
    return {"start": [round(c.start, TIME_DECIMALS) for c in analysis.chords],
            "end": [round(c.end, TIME_DECIMALS) for c in analysis.chords],
            "label": [c.label for c in analysis.chords]}


def _loudness(analysis: Analysis) -> dict:
    """Integrated LUFS (None when unknown or silent) and the short-term curve (LUFS, 0.1 LU steps)."""
    integrated = analysis.loudness_lufs
    return {"integrated": round(integrated, 2) if integrated is not None and np.isfinite(integrated) else None,
            "rate": analysis.short_term_rate,
            "short_term": [round(float(v), 1) for v in np.nan_to_num(analysis.short_term_lufs, neginf=-70.0)]}


def encode_audio(audio: np.ndarray, sample_rate: int) -> bytes:
    """Ogg Opus bytes of `audio` [C, N] or [N]: 48 kHz, stereo kept, other channel counts averaged."""
    audio = np.asarray(audio, dtype=np.float64)
    x = audio[:, None] if audio.ndim == 1 else (audio.T if audio.shape[0] == 2 else audio.mean(axis=0)[:, None])
    if sample_rate != OPUS_RATE:
        x = soxr.resample(x, sample_rate, OPUS_RATE, quality="HQ")  # [N, C]
    out = io.BytesIO()
    sf.write(out, np.clip(x, -1.0, 1.0), OPUS_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL)
    return out.getvalue()


def page_data(audio: np.ndarray, sample_rate: int, analysis: Analysis, track: HapticTrack, title: str = "") -> dict:
    """Everything the page draws (see the module docstring), from the audio [C, N] or [N] at
    `sample_rate`, its analysis and its haptic track."""
    track.check()
    mono = _mono(audio)
    step = analysis.hop
    grid = analysis.times

    def r(values) -> list[float]:
        return [round(float(v), TIME_DECIMALS) for v in values]

    amplitude, frequency = track.continuous.at(grid) if len(track.continuous.times) else (np.zeros(len(grid)),) * 2
    curves = {"sharpness": _curve(analysis.sharpness, step), "bed:amplitude": _curve(amplitude, step),
              "bed:frequency": _curve(frequency, step)}
    curves.update({f"stem:{name}": _curve(values, step) for name, values in analysis.stems.items()})
    transients = sorted(track.transients, key=lambda t: t.time)
    return {
        "title": title, "duration": round(float(track.duration), TIME_DECIMALS), "tempo": round(analysis.tempo, 2),
        "backends": analysis.backends,
        "waveform": _waveform(mono, sample_rate, step),
        "spectrogram": _spectrogram(mono, sample_rate),
        "curves": curves,
        "onsets": {"time": r(analysis.onsets), "strength": [round(float(s), 3) for s in analysis.onset_strength]},
        "beats": r(analysis.beats), "downbeats": r(analysis.downbeats),
        "transients": {"time": r(t.time for t in transients),
                       "intensity": [round(t.intensity, 3) for t in transients],
                       "sharpness": [round(t.sharpness, 3) for t in transients],
                       "layer": [t.layer for t in transients]},
        "sections": [{"start": s.start, "end": s.end, "tags": s.tags, "intensity": s.intensity, "density": s.density}
                     for s in analysis.sections],
        "chords": _chords(analysis), "key": analysis.key, "key_confidence": round(analysis.key_confidence, 3),
        "loudness": _loudness(analysis),
    }


def _script_json(data: dict) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it early."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(audio: np.ndarray, sample_rate: int, analysis: Analysis, track: HapticTrack, title: str = "") -> str:
    """The page's text (see the module docstring)."""
    template = Template((PAGE / "template.html").read_text(encoding="utf-8"))
    return template.substitute(
        title=html.escape(title or "melos sense").encode("ascii", "xmlcharrefreplace").decode(),  # an ASCII page
        css=(PAGE / "sense.css").read_text(encoding="utf-8"),
        js=(PAGE / "sense.js").read_text(encoding="utf-8"),
        data=_script_json(page_data(audio, sample_rate, analysis, track, title)),
        audio=_b64(encode_audio(audio, sample_rate)))


def write_html(path: str | Path, audio: np.ndarray, sample_rate: int, analysis: Analysis, track: HapticTrack,
               title: str = "") -> Path:
    """Write the page of one track to `path` atomically.

    Args:
        audio: the waveform [C, N] (or [N]) at `sample_rate`, as the analysis read it.
        analysis, track: what `melos.sense.analyze` and `to_track` made of it.
        title: shown at the top (the input's name).
    """
    return write_text(path, render_html(audio, sample_rate, analysis, track, title))

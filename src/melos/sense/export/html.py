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
    spectrogram   {"png": data URI, "fmin", "fmax", "step"}: log-mel power, low bins at the bottom
    curves        sharpness, stem:<name> (RMS envelopes), bed:amplitude, bed:frequency (the
                  continuous layer sampled on the analysis's frame grid)
    onsets        {"time", "strength"}; beats, downbeats: [times]
    transients    {"time", "intensity", "sharpness", "layer"}: the haptic track's, in time order
    sections      [{"start", "end", "tags", "intensity", "density"}]

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
MAX_COLUMNS = 3000  # spectrogram image width at most (px); a 3000 px image is sharp on any screen
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


def _spectrogram(mono: np.ndarray, sample_rate: int) -> dict:
    """The log-mel spectrogram as an indexed-colour PNG (magma), columns pooled to <= MAX_COLUMNS."""
    import librosa
    from matplotlib import colormaps
    from PIL import Image

    hop_length = 512
    fmax = min(sample_rate / 2, 12000.0)
    mel = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=sample_rate, n_fft=2048,
                                         hop_length=hop_length, n_mels=N_MELS, fmin=30.0, fmax=fmax)  # [M, T]
    pool = max(1, -(-mel.shape[1] // MAX_COLUMNS))
    n_columns = -(-mel.shape[1] // pool)
    padded = np.zeros((N_MELS, n_columns * pool), dtype=np.float64)
    padded[:, :mel.shape[1]] = mel
    power = padded.reshape(N_MELS, n_columns, pool).mean(axis=2)  # [M, columns]: mean power per column
    db = 10 * np.log10(np.maximum(power, 1e-12))
    top = max(float(db.max()), SPECTROGRAM_FLOOR_DB + SPECTROGRAM_DB)  # silence stays dark
    level = np.clip((db - (top - SPECTROGRAM_DB)) / SPECTROGRAM_DB, 0.0, 1.0)
    image = Image.fromarray(np.round(level[::-1] * 255).astype(np.uint8), mode="P")  # low bins at the bottom
    image.putpalette((colormaps["magma"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8).tobytes())
    png = io.BytesIO()
    image.save(png, format="PNG", optimize=True)
    return {"png": "data:image/png;base64," + _b64(png.getvalue()), "fmin": 30.0, "fmax": fmax,
            "step": pool * hop_length / sample_rate}


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

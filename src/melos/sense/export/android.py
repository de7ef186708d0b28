"""Android haptics: `VibrationEffect.createWaveform` JSON and Ogg files with haptic channels.

Waveform: {"timings": [ms, ...], "amplitudes": [0..255, ...], "repeat": -1}, one amplitude per
timing. The track is sampled in 10 ms steps (the envelope at each step's centre, amplitude
255 * a); a transient is a short strong pulse of 10-20 ms (a longer single impulse feels buzzy);
equal neighbouring steps are merged. Amplitude 0 stops the motor, so it is kept only for a real
pause: a stop shorter than `MIN_GAP_MS` is not felt as one (touch follows pulse trains only up to
about 10 Hz) but restarts the motor with a glitch, so it is held at amplitude 1 instead.

Ogg: the audio's channels, then 1 or 2 haptic channels carrying the voice-coil drive signal at the
audio's rate (`drive.render_drive`), Vorbis-encoded and tagged `ANDROID_HAPTIC=<n>`, which is how
Android's player finds the haptic channels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from ...utils.atomic import atomic_file, write_text
from ..track import HapticTrack
from .drive import render_drive, validate_drive
from .ogg import read_ogg_tags, set_vorbis_tags

STEP_MS = 10
MIN_GAP_MS = 50  # shortest amplitude-0 segment between two vibrations
PULSE_MS = (10, 20)  # allowed transient pulse lengths
MAX_HAPTIC_CHANNELS = 2  # Android's haptic channel masks: HAPTIC_A, HAPTIC_B
MAX_OGG_CHANNELS = 8  # Vorbis defines channel layouts up to 8


def to_waveform(track: HapticTrack, pulse_ms: int = 20) -> dict:
    """The `createWaveform` arguments of `track`: timings (ms), amplitudes (0..255), repeat -1."""
    track.check()
    if pulse_ms not in PULSE_MS:
        raise ValueError(f"pulse_ms {pulse_ms}: must be one of {PULSE_MS}")
    n_steps = max(1, round(track.duration * 1000 / STEP_MS))
    centres = (np.arange(n_steps) + 0.5) * STEP_MS / 1000
    amplitude = track.continuous.at(centres)[0] if len(track.continuous.times) else np.zeros(n_steps)
    levels = np.rint(np.clip(amplitude, 0, 1) * 255).astype(int)
    n_pulse = pulse_ms // STEP_MS
    for transient in track.transients:
        step = min(int(np.floor(transient.time * 1000 / STEP_MS + 1e-9)), n_steps - 1)
        span = levels[step:step + n_pulse]
        np.maximum(span, round(transient.intensity * 255), out=span)
    timings, amplitudes = _runs(_fill_short_stops(levels))
    return {"timings": timings, "amplitudes": amplitudes, "repeat": -1}


def _runs(levels: np.ndarray) -> tuple[list[int], list[int]]:
    """Run-length encoding of per-step levels [S]: (timings in ms, amplitudes)."""
    starts = np.flatnonzero(np.r_[True, levels[1:] != levels[:-1]])
    lengths = np.diff(np.r_[starts, len(levels)])
    return [int(n) * STEP_MS for n in lengths], [int(levels[i]) for i in starts]


def _fill_short_stops(levels: np.ndarray) -> np.ndarray:
    """Per-step levels [S] with every run of 0 between two vibrations shorter than MIN_GAP_MS set to 1."""
    levels = levels.copy()
    starts = np.flatnonzero(np.r_[True, levels[1:] != levels[:-1]])
    ends = np.r_[starts[1:], len(levels)]
    for start, end in zip(starts[1:-1], ends[1:-1]):
        if levels[start] == 0 and (end - start) * STEP_MS < MIN_GAP_MS:
            levels[start:end] = 1
    return levels


def validate_waveform(data: dict) -> None:
    """Raise ValueError naming the broken rule unless `data` is a valid waveform.

    Rules: keys timings/amplitudes/repeat; equal, non-zero lengths; integer timings, each a positive
    multiple of 10 ms; integer amplitudes 0..255; repeat -1 or an index; no amplitude-0 segment
    shorter than 50 ms between two vibrations."""
    if not isinstance(data, dict) or any(key not in data for key in ("timings", "amplitudes", "repeat")):
        raise ValueError("waveform: must be an object with timings, amplitudes and repeat")
    timings, amplitudes, repeat = data["timings"], data["amplitudes"], data["repeat"]
    if not isinstance(timings, list) or not isinstance(amplitudes, list):
        raise ValueError("waveform: timings and amplitudes must be lists")
    if len(timings) != len(amplitudes):
        raise ValueError(f"waveform: {len(timings)} timings but {len(amplitudes)} amplitudes, must be equal")
    if not timings:
        raise ValueError("waveform: timings must not be empty")
    for i, ms in enumerate(timings):
        if not _is_int(ms) or ms <= 0 or ms % STEP_MS:
            raise ValueError(f"waveform: timings[{i}] = {ms!r}, must be a positive multiple of {STEP_MS} ms")
    for i, value in enumerate(amplitudes):
        if not _is_int(value) or not 0 <= value <= 255:
            raise ValueError(f"waveform: amplitudes[{i}] = {value!r}, must be an integer 0..255")
    if not _is_int(repeat) or not (repeat == -1 or 0 <= repeat < len(timings)):
        raise ValueError(f"waveform: repeat {repeat!r}, must be -1 or an index into timings")
    for i in range(1, len(timings) - 1):
        if amplitudes[i] == 0 and timings[i] < MIN_GAP_MS and amplitudes[i - 1] and amplitudes[i + 1]:
            raise ValueError(f"waveform: amplitudes[{i}] = 0 for {timings[i]} ms inside a vibration, "
                             f"must be at least 1 (a pause lasts at least {MIN_GAP_MS} ms)")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def write_waveform(track: HapticTrack, path: str | Path, pulse_ms: int = 20) -> Path:
    """Export, validate and write `track`'s waveform JSON atomically."""
    data = to_waveform(track, pulse_ms)
    validate_waveform(data)
    return write_text(path, json.dumps(data) + "\n")


def validate_haptic_ogg(path: str | Path) -> None:
    """Raise ValueError naming the broken rule unless `path` is an Ogg Vorbis file whose
    `ANDROID_HAPTIC` tag is an integer 1..2 that leaves at least one audio channel."""
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as err:
        raise ValueError(f"{path}: not a readable audio file ({err})") from None
    if info.format != "OGG" or info.subtype != "VORBIS":
        raise ValueError(f"{path}: {info.format}/{info.subtype}, must be OGG/VORBIS")
    value = read_ogg_tags(path).get("ANDROID_HAPTIC")
    if value is None:
        raise ValueError(f"{path}: no ANDROID_HAPTIC Vorbis comment")
    if not value.isdigit() or not 1 <= int(value) <= MAX_HAPTIC_CHANNELS:
        raise ValueError(f"{path}: ANDROID_HAPTIC={value}, must be 1..{MAX_HAPTIC_CHANNELS}")
    if info.channels <= int(value):
        raise ValueError(f"{path}: {info.channels} channels with ANDROID_HAPTIC={value}, "
                         f"must leave at least one audio channel")


OGG_BLOCK = 65536  # frames per libsndfile write


def write_haptic_ogg(audio: np.ndarray, sample_rate: int, track: HapticTrack, path: str | Path,
                     carrier_hz: float = 170.0, n_haptic: int = 1) -> Path:
    """Write the audio plus `n_haptic` haptic channels as an Ogg Vorbis file tagged ANDROID_HAPTIC.

    Args:
        audio: float audio, [C, N] or [N], at `sample_rate`.
        track: the haptic track; its drive signal at `sample_rate` (cut or zero-padded to N
            samples) fills every haptic channel.
        carrier_hz: the actuator resonance (150-250 Hz)."""
    audio = np.asarray(audio, dtype=np.float32)
    audio = audio[None] if audio.ndim == 1 else audio  # [C, N]
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"audio: shape {audio.shape}, must be [C, N] or [N]")
    if not 1 <= n_haptic <= MAX_HAPTIC_CHANNELS:
        raise ValueError(f"n_haptic {n_haptic}: must be 1..{MAX_HAPTIC_CHANNELS}")
    if audio.shape[0] + n_haptic > MAX_OGG_CHANNELS:
        raise ValueError(f"{audio.shape[0]} audio + {n_haptic} haptic channels: at most {MAX_OGG_CHANNELS}")
    n = audio.shape[1]
    drive = render_drive(track, sample_rate, carrier_hz)[:n]
    drive = np.pad(drive, (0, n - len(drive)))
    validate_drive(drive, sample_rate, require_rate=None)
    frames = np.concatenate([audio, np.repeat(drive[None], n_haptic, axis=0)]).T  # [N, C + n_haptic]
    with atomic_file(path) as tmp:
        # In blocks: libsndfile's Vorbis encoder crashes (segfault) on one write of a few minutes of audio.
        with sf.SoundFile(tmp, "w", sample_rate, frames.shape[1], format="OGG", subtype="VORBIS") as f:
            for start in range(0, len(frames), OGG_BLOCK):
                f.write(frames[start:start + OGG_BLOCK])
        set_vorbis_tags(tmp, {"ANDROID_HAPTIC": str(n_haptic)})
        validate_haptic_ogg(tmp)
    return Path(path)

"""Android haptics: `VibrationEffect.createWaveform` JSON and Ogg files with haptic channels.

Waveform JSON, for `createWaveform(timings, amplitudes, repeat)` and, on a vibrator without
amplitude control (`Vibrator.hasAmplitudeControl()` false), `createWaveform(timings, repeat)`:

    {"timings": [ms, ...], "amplitudes": [0..255, ...], "repeat": -1,
     "onoff": {"timings": [off ms, on ms, off ms, ...], "repeat": -1}}

Amplitudes: the track is sampled in 10 ms steps, amplitude round(255 x a) (a physical, see
melos.sense.track). The bed holds its level until it moves by more than BED_STEP (so a jittery
envelope does not restart the level every step) and is 0 below BED_FLOOR, which a phone motor does
not render: the motor rests where the bed is weak instead of running all the time. A transient is
a 10-20 ms pulse at round(255 x its amplitude), or the bed's level if that is higher (a longer
single impulse feels buzzy). Equal neighbouring steps are one segment. Amplitude 0 stops the motor,
so it is kept only for a real pause: a stop shorter than `MIN_GAP_MS` is not felt as one (touch
follows pulse trains only up to about 10 Hz) but restarts the motor with a glitch, so it is held at
amplitude 1 instead.

On/off ("onoff"): a vibrator without amplitude control plays every "on" at its one strength, so
the bed is left out and each transient at least as strong as the track's median transient (the
stronger half: at one strength the weak taps would hit as hard as the accents) is one pulse as
above, a pulse less than MIN_GAP_MS after the previous one dropped; timings alternate off and on,
starting with off (a leading 0 when the track starts on a pulse), and add up to the same duration.

Ogg: the audio's channels, then 1 or 2 haptic channels carrying the voice-coil drive signal at the
audio's rate (`drive.render_drive`), Vorbis-encoded and tagged `ANDROID_HAPTIC=<n>`. Channel order,
as Android reads it (AOSP frameworks/av):

    media/extractors/ogg/OggExtractor.cpp   the ANDROID_HAPTIC comment gives the haptic channel
        count (parseVorbisComment, MetaDataUtils.cpp); setChannelMask() sets the track's mask to
        audio_channel_out_mask_from_count(channels - n) | haptic_channel_mask_from_count(n):
        the first channels - n are audio, the last n (HAPTIC_A, HAPTIC_B: the mask's highest bits)
        are haptic.
    media/codec2/components/vorbis/C2SoftVorbisDec.cpp   decodes with Tremolo's
        vorbis_dsp_pcmout, which interleaves channel i at position i: the stream's order, never
        the Vorbis I spec's speaker order (3 channels = L, C, R), is what the mask labels.

libsndfile writes and reads the stream's channels in the order it is given (src/ogg_vorbis.c,
vorbis_write_f / vorbis_rfloat), so [audio..., drive...] on the way in is audio then haptics on
Android. A desktop player that maps Vorbis channels to speakers (ffmpeg) would put a 3-channel
file's second audio channel on the centre and the drive on the right; nothing here can be both.
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
BED_FLOOR = 0.1  # a bed weaker than this (amplitude) is 0: a phone's motor does not render it
BED_STEP = 0.06  # the bed holds its level until the envelope moves away from it by more than this
MAX_HAPTIC_CHANNELS = 2  # Android's haptic channel masks: HAPTIC_A, HAPTIC_B
MAX_OGG_CHANNELS = 8  # Vorbis defines channel layouts up to 8


def to_waveform(track: HapticTrack, pulse_ms: int = 20) -> dict:
    """The `createWaveform` arguments of `track`: timings (ms), amplitudes (0..255), repeat -1,
    and the on/off pattern for vibrators without amplitude control (see the module docstring)."""
    track.check()
    if pulse_ms not in PULSE_MS:
        raise ValueError(f"pulse_ms {pulse_ms}: must be one of {PULSE_MS}")
    n_steps = max(1, round(track.duration * 1000 / STEP_MS))
    levels = _bed_levels(track, n_steps)
    n_pulse = pulse_ms // STEP_MS
    for transient in track.transients:
        step = _step(transient.time, n_steps)
        span = levels[step:step + n_pulse]
        np.maximum(span, round(transient.intensity * 255), out=span)
    timings, amplitudes = _runs(_fill_short_stops(levels))
    return {"timings": timings, "amplitudes": amplitudes, "repeat": -1,
            "onoff": {"timings": _onoff(track, n_steps, n_pulse), "repeat": -1}}


def _step(time: float, n_steps: int) -> int:
    """The 10 ms step a transient at `time` (seconds) starts in."""
    return min(int(np.floor(time * 1000 / STEP_MS + 1e-9)), n_steps - 1)


def _bed_levels(track: HapticTrack, n_steps: int) -> np.ndarray:
    """Per-step bed amplitudes [S] (0..255): the envelope at each step's centre, held until it
    moves by more than BED_STEP, 0 below BED_FLOOR."""
    if not len(track.continuous.times):
        return np.zeros(n_steps, dtype=int)
    target = track.continuous.at((np.arange(n_steps) + 0.5) * STEP_MS / 1000)[0]
    held, levels = 0.0, np.zeros(n_steps)
    for i, value in enumerate(target):
        if abs(value - held) > BED_STEP:
            held = value if value >= BED_FLOOR else 0.0
        levels[i] = held
    return np.rint(np.clip(levels, 0, 1) * 255).astype(int)


def _onoff(track: HapticTrack, n_steps: int, n_pulse: int) -> list[int]:
    """Alternating off/on timings (ms, starting with off) of the transients' pulses."""
    on = np.zeros(n_steps, dtype=bool)
    free_from = 0  # the first step a pulse may start on (a pause of MIN_GAP_MS after the last)
    median = float(np.median([tr.intensity for tr in track.transients])) if track.transients else 0.0
    for transient in sorted(track.transients, key=lambda tr: tr.time):
        step = _step(transient.time, n_steps)
        if transient.intensity >= median and step >= free_from:
            on[step:step + n_pulse] = True
            free_from = step + n_pulse + MIN_GAP_MS // STEP_MS
    starts = np.flatnonzero(np.r_[True, on[1:] != on[:-1]])
    lengths = np.diff(np.r_[starts, n_steps]) * STEP_MS
    return ([0] if on[0] else []) + [int(n) for n in lengths]


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

    Rules: keys timings/amplitudes/repeat/onoff; equal, non-zero lengths; integer timings, each a
    positive multiple of 10 ms; integer amplitudes 0..255, neighbours different (merged); repeat
    -1 or an index; no amplitude-0 segment shorter than 50 ms between two vibrations. onoff: an
    object with timings and repeat; integer timings, multiples of 10 ms, positive but for the first
    (off) one; every on 10..20 ms (a transient's pulse), every off between two ons at least 50 ms;
    as long in all as the amplitude waveform."""
    if not isinstance(data, dict) or any(key not in data for key in ("timings", "amplitudes", "repeat", "onoff")):
        raise ValueError("waveform: must be an object with timings, amplitudes, repeat and onoff")
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
        if i and value == amplitudes[i - 1]:
            raise ValueError(f"waveform: amplitudes[{i}] = amplitudes[{i - 1}] = {value}, "
                             f"equal neighbouring segments must be one")
    _check_repeat(repeat, timings, "waveform")
    for i in range(1, len(timings) - 1):
        if amplitudes[i] == 0 and timings[i] < MIN_GAP_MS and amplitudes[i - 1] and amplitudes[i + 1]:
            raise ValueError(f"waveform: amplitudes[{i}] = 0 for {timings[i]} ms inside a vibration, "
                             f"must be at least 1 (a pause lasts at least {MIN_GAP_MS} ms)")
    _check_onoff(data["onoff"], sum(timings))


def _check_repeat(repeat, timings: list, where: str) -> None:
    if not _is_int(repeat) or not (repeat == -1 or 0 <= repeat < len(timings)):
        raise ValueError(f"{where}: repeat {repeat!r}, must be -1 or an index into timings")


def _check_onoff(onoff, total_ms: int) -> None:
    """The on/off pattern's rules (see `validate_waveform`)."""
    if not isinstance(onoff, dict) or not isinstance(onoff.get("timings"), list) or "repeat" not in onoff:
        raise ValueError("waveform: onoff must be an object with a timings list and repeat")
    timings = onoff["timings"]
    if not timings:
        raise ValueError("waveform: onoff.timings must not be empty")
    for i, ms in enumerate(timings):
        if not _is_int(ms) or ms < (1 if i else 0) or ms % STEP_MS:
            kind = "positive" if i else "non-negative"
            raise ValueError(f"waveform: onoff.timings[{i}] = {ms!r}, must be a {kind} multiple of {STEP_MS} ms")
        if i % 2 and not PULSE_MS[0] <= ms <= PULSE_MS[1]:
            raise ValueError(f"waveform: onoff.timings[{i}] = {ms} ms on, must be "
                             f"{PULSE_MS[0]}-{PULSE_MS[1]} ms (a transient's pulse)")
        if i % 2 == 0 and 0 < i < len(timings) - 1 and ms < MIN_GAP_MS:
            raise ValueError(f"waveform: onoff.timings[{i}] = {ms} ms off between two pulses, "
                             f"must be at least {MIN_GAP_MS} ms")
    _check_repeat(onoff["repeat"], timings, "waveform: onoff")
    if sum(timings) != total_ms:
        raise ValueError(f"waveform: onoff.timings add up to {sum(timings)} ms, the amplitude waveform "
                         f"to {total_ms} ms, must be equal")


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
    # audio first, haptics last: the order Android's Ogg extractor labels them in (module docstring)
    frames = np.concatenate([audio, np.repeat(drive[None], n_haptic, axis=0)]).T  # [N, C + n_haptic]
    with atomic_file(path) as tmp:
        # In blocks: libsndfile's Vorbis encoder crashes (segfault) on one write of a few minutes of audio.
        with sf.SoundFile(tmp, "w", sample_rate, frames.shape[1], format="OGG", subtype="VORBIS") as f:
            for start in range(0, len(frames), OGG_BLOCK):
                f.write(frames[start:start + OGG_BLOCK])
        set_vorbis_tags(tmp, {"ANDROID_HAPTIC": str(n_haptic)})
        validate_haptic_ogg(tmp)
    return Path(path)

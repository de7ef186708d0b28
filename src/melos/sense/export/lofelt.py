"""Meta Haptics Studio / Lofelt `.haptic` files (data model v1.0.0, JSON).

    {"version": {"major": 1, "minor": 0, "patch": 0}, "metadata": {...},
     "signals": {"continuous": {"envelopes": {
         "amplitude": [{"time", "amplitude", "emphasis"?: {"amplitude", "frequency"}}, ...],
         "frequency": [{"time", "frequency"}, ...]}}}}

Amplitudes are the track's physical ones (melos.sense.track), written as they are: the SDK applies
the perceptual mapping itself. Its conversion to Core Haptics (Lofelt/NiceVibrations,
core/datamodel/src/ios/v1.rs, `impl From<v1::DataModel> for Ahap`; apps/haptic2ahap wraps it) writes
HapticIntensityControl = sqrt(amplitude) (x 0.8 at a breakpoint with emphasis, its
AMPLITUDE_DUCKING), HapticSharpnessControl = sqrt(frequency) over HapticContinuous events at
intensity 1 and sharpness 0, and each emphasis as a HapticTransient of intensity
sqrt(emphasis amplitude) and sharpness = emphasis frequency; by default it splits the transients
into a second AHAP to play alongside, as the curves would otherwise scale them too (haptic2ahap's
--no-split help; melos's own AHAP compensates instead, see ahap.py). So a
transient of amplitude a plays at sqrt(a) from this file as from melos's own AHAP. (On Android the
SDK renders emphasis into the amplitude envelope instead: core/datamodel/src/emphasis.rs.)

The amplitude envelope is the continuous layer's breakpoints, padded to span the whole track
(a repeated time makes the step at the layer's edges, as the model is 0 outside it). A transient
becomes emphasis on a breakpoint at its time (inserted at the envelope's value there): emphasis
amplitude = the transient's amplitude, or the envelope's there if that is higher (the format
requires it to be at least the envelope's; every other format also plays the louder of the two);
emphasis frequency = sharpness. The frequency envelope (optional in the format) is the layer's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...utils.atomic import write_text
from ..track import HapticTrack

TIME_DECIMALS = 6
VALUE_DECIMALS = 4


def _amplitude_points(track: HapticTrack) -> list[dict]:
    """The layer's amplitude breakpoints, padded with zeros to span [0, duration]."""
    c = track.continuous
    points = [(float(t), float(a)) for t, a in zip(c.times, c.amplitude)]
    if not points:
        return [{"time": 0.0, "amplitude": 0.0}, {"time": float(track.duration), "amplitude": 0.0}]
    if points[0][0] > 0:
        points[:0] = [(0.0, 0.0)] + ([(points[0][0], 0.0)] if points[0][1] > 0 else [])
    if points[-1][0] < track.duration:
        points += ([(points[-1][0], 0.0)] if points[-1][1] > 0 else []) + [(float(track.duration), 0.0)]
    return [{"time": t, "amplitude": a} for t, a in points]


def _add_emphasis(points: list[dict], track: HapticTrack) -> list[dict]:
    """Points with each transient as emphasis on the (last) breakpoint at its time."""
    at_time = {round(p["time"], 9): p for p in points}  # a repeated time keeps its last point
    for transient in sorted(track.transients, key=lambda tr: tr.time):
        point = at_time.get(round(transient.time, 9))
        if point is None:
            level = float(track.continuous.at(transient.time)[0]) if len(track.continuous.times) else 0.0
            point = at_time[round(transient.time, 9)] = {"time": float(transient.time), "amplitude": level}
            points.append(point)
        emphasis = {"amplitude": max(transient.intensity, point["amplitude"]), "frequency": transient.sharpness}
        if "emphasis" not in point or emphasis["amplitude"] > point["emphasis"]["amplitude"]:
            point["emphasis"] = emphasis
    return sorted(points, key=lambda p: p["time"])  # stable: repeated times keep their order


def _rounded(point: dict) -> dict:
    """`point` with times to 1 us and values to 4 decimals (rounding keeps order and emphasis >= level)."""
    out = {}
    for key, value in point.items():
        digits = TIME_DECIMALS if key == "time" else VALUE_DECIMALS
        out[key] = _rounded(value) if isinstance(value, dict) else round(float(value), digits)
    return out


def to_lofelt(track: HapticTrack, metadata: dict | None = None) -> dict:
    """The `.haptic` v1 document of `track`."""
    track.check()
    amplitude = [_rounded(p) for p in _add_emphasis(_amplitude_points(track), track)]
    envelopes = {"amplitude": amplitude}
    c = track.continuous
    if len(c.times):
        envelopes["frequency"] = [_rounded({"time": t, "frequency": f}) for t, f in zip(c.times, c.frequency)]
    return {
        "version": {"major": 1, "minor": 0, "patch": 0},
        "metadata": {"editor": "melos", "source": "", "project": "", "tags": [], "description": "",
                     **(metadata or {})},
        "signals": {"continuous": {"envelopes": envelopes}},
    }


def _number(value, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ValueError(f"lofelt: {where} = {value!r}, must be a number in {lo:g}..{hi:g}")
    return float(value)


def _check_times(points: list, name: str) -> None:
    for i in range(1, len(points)):
        if points[i]["time"] < points[i - 1]["time"]:
            raise ValueError(f"lofelt: {name}[{i}].time {points[i]['time']} < {points[i - 1]['time']} "
                             f"before it, times must not decrease")


def validate_lofelt(data: dict) -> None:
    """Raise ValueError naming the broken rule unless `data` is a valid `.haptic` v1 document.

    Rules: version.major 1 (minor, patch integers); metadata an object if present; an amplitude
    envelope of at least two points; every time >= 0; amplitudes, frequencies and emphasis values
    0..1; emphasis with both amplitude and frequency, its amplitude >= the breakpoint's; times
    non-decreasing in each envelope; the frequency envelope (optional) a list of points."""
    if not isinstance(data, dict):
        raise ValueError("lofelt: the document must be an object")
    version = data.get("version")
    if not isinstance(version, dict) or version.get("major") != 1 or isinstance(version.get("major"), bool):
        raise ValueError(f"lofelt: version {version!r}, must have major 1")
    for key in ("minor", "patch"):
        if key in version and (not isinstance(version[key], int) or isinstance(version[key], bool)):
            raise ValueError(f"lofelt: version.{key} {version[key]!r}, must be an integer")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        raise ValueError("lofelt: metadata must be an object")
    try:
        envelopes = data["signals"]["continuous"]["envelopes"]
        amplitude = envelopes["amplitude"]
    except (KeyError, TypeError):
        raise ValueError("lofelt: missing signals.continuous.envelopes.amplitude") from None
    if not isinstance(amplitude, list) or len(amplitude) < 2:
        raise ValueError("lofelt: the amplitude envelope must have at least two points")
    for i, point in enumerate(amplitude):
        where = f"amplitude[{i}]"
        if not isinstance(point, dict):
            raise ValueError(f"lofelt: {where} must be an object")
        _number(point.get("time"), f"{where}.time", 0.0, math.inf)
        level = _number(point.get("amplitude"), f"{where}.amplitude", 0.0, 1.0)
        if "emphasis" in point:
            emphasis = point["emphasis"]
            if not isinstance(emphasis, dict):
                raise ValueError(f"lofelt: {where}.emphasis must be an object")
            boost = _number(emphasis.get("amplitude"), f"{where}.emphasis.amplitude", 0.0, 1.0)
            _number(emphasis.get("frequency"), f"{where}.emphasis.frequency", 0.0, 1.0)
            if boost < level:
                raise ValueError(f"lofelt: {where}.emphasis.amplitude {boost} < the envelope's {level}, "
                                 f"must be at least it")
    _check_times(amplitude, "amplitude")
    frequency = envelopes.get("frequency", [])
    if not isinstance(frequency, list):
        raise ValueError("lofelt: the frequency envelope must be a list")
    for i, point in enumerate(frequency):
        if not isinstance(point, dict):
            raise ValueError(f"lofelt: frequency[{i}] must be an object")
        _number(point.get("time"), f"frequency[{i}].time", 0.0, math.inf)
        _number(point.get("frequency"), f"frequency[{i}].frequency", 0.0, 1.0)
    _check_times(frequency, "frequency")


def write_lofelt(track: HapticTrack, path: str | Path, metadata: dict | None = None) -> Path:
    """Export, validate and write `track` as a `.haptic` file atomically."""
    data = to_lofelt(track, metadata)
    validate_lofelt(data)
    return write_text(path, json.dumps(data, indent=1) + "\n")

"""Apple Core Haptics AHAP files (JSON): transient events, continuous events and parameter curves.

    {"Version": 1.0, "Metadata": {...}, "Pattern": [
        {"Event": {"Time", "EventType": "HapticTransient", "EventParameters": [intensity, sharpness]}},
        {"Event": {"Time", "EventType": "HapticContinuous", "EventDuration" <= 30 s, ...}},
        {"ParameterCurve": {"ParameterID": "HapticIntensityControl" | "HapticSharpnessControl",
                            "Time", "ParameterCurveControlPoints": [{"Time" (relative), "ParameterValue"}]}}]}

The continuous layer is HapticContinuous events at intensity 1 and sharpness 0.5, split at 30 s,
shaped by curves: the intensity control (a multiplier, 0..1) follows sqrt(amplitude), as Core
Haptics intensity is perceived roughly quadratically; the sharpness control (added, -1..1)
follows frequency - 0.5. Each envelope is simplified first (Ramer-Douglas-Peucker on the value
error, within `tolerance` at every breakpoint), then cut into consecutive curves of at most 16
control points, each starting where the previous one ends.

Curves act on every event of a pattern, transients included, so around each transient at t

    continuous events   ...running | stopped (t - 10 ms .. t + 40 ms)  | running...
    intensity control   envelope   | ramp to 1 at t, 1 until t + 20 ms | back to the envelope
    sharpness control   envelope   | ramp to 0 at t, 0 until t + 20 ms | back to the envelope

the continuous layer is ducked to silence (overlapping layers can cancel each other's phase) and the controls are neutral, so a transient plays at its own intensity and sharpness
whatever the envelope is. Windows closer than 1 ms merge.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...utils.atomic import write_text
from ..track import HapticTrack

MAX_EVENT_S = 30.0  # longest HapticContinuous event Core Haptics plays
MAX_CURVE_POINTS = 16  # control points per ParameterCurve
DUCK_BEFORE_S = 0.01  # the continuous layer stops this long before a transient
NEUTRAL_S = 0.02  # controls stay neutral this long from a transient
DUCK_AFTER_S = 0.04  # the continuous layer resumes this long after a transient
BASE_SHARPNESS = 0.5  # the continuous events' sharpness, which the sharpness control offsets
MIN_EVENT_S = 1e-3  # shorter stretches between two ducks are dropped
TIME_DECIMALS = 6
VALUE_DECIMALS = 4
CURVE_RANGES = {"HapticIntensityControl": (0.0, 1.0), "HapticSharpnessControl": (-1.0, 1.0)}
EVENT_TYPES = ("HapticTransient", "HapticContinuous")

Duck = tuple[float, float, float, float]  # start, first transient, last transient, end (seconds)


def simplify(times: np.ndarray, values: np.ndarray, tolerance: float,
             keep: np.ndarray | None = None) -> np.ndarray:
    """Indices of the breakpoints to keep so that linear interpolation between them is within
    `tolerance` of every breakpoint's value (Ramer-Douglas-Peucker on the vertical error).

    Args:
        times: strictly increasing [N]; values: [N]; keep: bool [N], breakpoints that must stay
            (the first and last always do)."""
    n = len(times)
    kept = np.zeros(n, dtype=bool) if keep is None else keep.copy()
    if n == 0:
        return np.zeros(0, dtype=int)
    kept[[0, -1]] = True
    anchors = np.flatnonzero(kept)
    stack = list(zip(anchors[:-1], anchors[1:]))
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        inner = np.arange(i + 1, j)
        line = values[i] + (values[j] - values[i]) * (times[inner] - times[i]) / (times[j] - times[i])
        errors = np.abs(values[inner] - line)
        worst = int(errors.argmax())
        if errors[worst] > tolerance:
            k = int(inner[worst])
            kept[k] = True
            stack += [(i, k), (k, j)]
    return np.flatnonzero(kept)


def _ducks(track: HapticTrack) -> list[Duck]:
    """Merged duck windows (start, first transient, last transient, end), in time order."""
    ducks: list[list[float]] = []
    for t in sorted(tr.time for tr in track.transients):
        start, end = max(0.0, t - DUCK_BEFORE_S), t + DUCK_AFTER_S
        if ducks and start <= ducks[-1][3] + MIN_EVENT_S:
            ducks[-1][2:] = [t, end]
        else:
            ducks.append([start, t, t, end])
    return [tuple(d) for d in ducks]


def _event_spans(start: float, end: float, ducks: list[Duck]) -> list[tuple[float, float]]:
    """[start, end] minus the duck windows, cut into spans of at most MAX_EVENT_S."""
    free, cursor = [], start
    for d0, _, _, d1 in ducks:
        if d0 > cursor:
            free.append((cursor, min(d0, end)))
        cursor = max(cursor, d1)
    free.append((cursor, end))
    spans = []
    for a, b in free:
        while b - a >= MIN_EVENT_S:
            spans.append((a, min(b, a + MAX_EVENT_S)))
            a = spans[-1][1]
    return spans


def _control_points(times: np.ndarray, values: np.ndarray, level: Callable[[float], float], neutral: float,
                    ducks: list[Duck], tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Simplified control breakpoints: the envelope outside the ducks, `neutral` at transients.

    `level(t)` gives the envelope's control value at any time (for the duck edges)."""
    inside = np.zeros(len(times), dtype=bool)
    anchors = []
    for d0, first, last, d1 in ducks:
        inside |= (times > d0 - 1e-4) & (times < d1 + 1e-4)
        anchors += [(d0, level(d0))] if d0 < first - 1e-4 else []
        anchors += [(first, neutral), (last + NEUTRAL_S, neutral), (d1, level(d1))]
    t = np.concatenate([times[~inside], [a[0] for a in anchors]])
    v = np.concatenate([values[~inside], [a[1] for a in anchors]])
    fixed = np.r_[np.zeros((~inside).sum(), dtype=bool), np.ones(len(anchors), dtype=bool)]
    order = np.argsort(t, kind="stable")
    t, v, fixed = t[order], v[order], fixed[order]
    keep = simplify(t, v, tolerance, fixed)
    return t[keep], v[keep]


def _curves(parameter: str, times: np.ndarray, values: np.ndarray) -> list[dict]:
    """Consecutive ParameterCurves of at most MAX_CURVE_POINTS, each starting at the previous end."""
    values = np.clip(values, *CURVE_RANGES[parameter])
    curves = []
    step = MAX_CURVE_POINTS - 1
    for start in range(0, max(len(times) - 1, 1), step):
        t = times[start:start + MAX_CURVE_POINTS]
        v = values[start:start + MAX_CURVE_POINTS]
        t0 = round(float(t[0]), TIME_DECIMALS)
        curves.append({"ParameterCurve": {
            "ParameterID": parameter,
            "Time": t0,
            "ParameterCurveControlPoints": [
                {"Time": round(float(ti) - t0, TIME_DECIMALS),
                 "ParameterValue": round(float(vi), VALUE_DECIMALS)}
                for ti, vi in zip(t, v)],
        }})
    return curves


def _event(time: float, event_type: str, intensity: float, sharpness: float, duration: float | None = None) -> dict:
    event = {"Time": round(float(time), TIME_DECIMALS), "EventType": event_type}
    if duration is not None:
        event["EventDuration"] = round(float(duration), TIME_DECIMALS)
    event["EventParameters"] = [
        {"ParameterID": "HapticIntensity", "ParameterValue": round(float(intensity), VALUE_DECIMALS)},
        {"ParameterID": "HapticSharpness", "ParameterValue": round(float(sharpness), VALUE_DECIMALS)},
    ]
    return {"Event": event}


def to_ahap(track: HapticTrack, tolerance: float = 0.02, metadata: dict | None = None) -> dict:
    """The AHAP document of `track`.

    Args:
        tolerance: largest error of a control curve at the envelope's breakpoints (in control
            units: intensity 0..1, sharpness offset)."""
    track.check()
    ducks = _ducks(track)
    pattern = [_event(tr.time, "HapticTransient", tr.intensity, tr.sharpness)
               for tr in sorted(track.transients, key=lambda tr: tr.time)]
    c = track.continuous
    if len(c.times) >= 2:
        spans = _event_spans(float(c.times[0]), float(c.times[-1]), ducks)
        pattern += [_event(a, "HapticContinuous", 1.0, BASE_SHARPNESS, b - a) for a, b in spans]
        if spans:
            intensity = _control_points(c.times, np.sqrt(c.amplitude), lambda t: math.sqrt(c.at(t)[0]),
                                        1.0, ducks, tolerance)
            sharpness = _control_points(c.times, c.frequency - BASE_SHARPNESS,
                                        lambda t: float(c.at(t)[1]) - BASE_SHARPNESS, 0.0, ducks, tolerance)
            pattern += _curves("HapticIntensityControl", *intensity)
            pattern += _curves("HapticSharpnessControl", *sharpness)
    pattern.sort(key=lambda entry: next(iter(entry.values()))["Time"])
    return {"Version": 1.0,
            "Metadata": {"Project": "melos", "Description": "haptics from music", **(metadata or {})},
            "Pattern": pattern}


def _number(value, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ValueError(f"AHAP: {where} = {value!r}, must be a number in {lo:g}..{hi:g}")
    return float(value)


def _check_event(event, where: str) -> tuple[str, float, float]:
    """Validate one Event; return its type, start and end."""
    if not isinstance(event, dict):
        raise ValueError(f"AHAP: {where} must be an object")
    time = _number(event.get("Time"), f"{where}.Time", 0.0)
    kind = event.get("EventType")
    if kind not in EVENT_TYPES:
        raise ValueError(f"AHAP: {where}.EventType {kind!r}, must be one of {EVENT_TYPES}")
    duration = 0.0
    if kind == "HapticContinuous":
        duration = _number(event.get("EventDuration"), f"{where}.EventDuration", 0.0, MAX_EVENT_S)
        if duration == 0:
            raise ValueError(f"AHAP: {where}.EventDuration is 0, must be positive")
    parameters = event.get("EventParameters", [])
    if not isinstance(parameters, list):
        raise ValueError(f"AHAP: {where}.EventParameters must be a list")
    for j, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise ValueError(f"AHAP: {where}.EventParameters[{j}] must be an object")
        name = parameter.get("ParameterID")
        bounds = (0.0, 1.0) if name in ("HapticIntensity", "HapticSharpness") else (-math.inf, math.inf)
        _number(parameter.get("ParameterValue"), f"{where}.EventParameters[{j}] ({name})", *bounds)
    return kind, time, time + duration


def _check_curve(curve, where: str) -> None:
    if not isinstance(curve, dict):
        raise ValueError(f"AHAP: {where} must be an object")
    name = curve.get("ParameterID")
    if name not in CURVE_RANGES:
        raise ValueError(f"AHAP: {where}.ParameterID {name!r}, must be one of {tuple(CURVE_RANGES)}")
    _number(curve.get("Time"), f"{where}.Time", 0.0)
    points = curve.get("ParameterCurveControlPoints")
    if not isinstance(points, list) or not 1 <= len(points) <= MAX_CURVE_POINTS:
        count = len(points) if isinstance(points, list) else points
        raise ValueError(f"AHAP: {where} has {count} control points, must have 1..{MAX_CURVE_POINTS}")
    previous = -math.inf
    for j, point in enumerate(points):
        if not isinstance(point, dict):
            raise ValueError(f"AHAP: {where}.ParameterCurveControlPoints[{j}] must be an object")
        time = _number(point.get("Time"), f"{where}.ParameterCurveControlPoints[{j}].Time", 0.0)
        if time <= previous:
            raise ValueError(f"AHAP: {where}.ParameterCurveControlPoints[{j}].Time {time} <= {previous} "
                             f"before it, times must increase")
        previous = time
        _number(point.get("ParameterValue"), f"{where}.ParameterCurveControlPoints[{j}] ({name})",
                *CURVE_RANGES[name])


def validate_ahap(data: dict) -> None:
    """Raise ValueError naming the broken rule unless `data` is a valid AHAP document.

    Rules: a numeric Version >= 1; Metadata an object if present; Pattern a list of objects, each
    holding one Event or one ParameterCurve; events: Time >= 0, EventType HapticTransient or
    HapticContinuous, HapticIntensity/HapticSharpness 0..1, continuous EventDuration in (0, 30] s;
    curves: HapticIntensityControl (values 0..1) or HapticSharpnessControl (-1..1), Time >= 0,
    1..16 control points with increasing times >= 0; no transient inside a continuous event."""
    if not isinstance(data, dict):
        raise ValueError("AHAP: the document must be an object")
    _number(data.get("Version"), "Version", 1.0)
    if "Metadata" in data and not isinstance(data["Metadata"], dict):
        raise ValueError("AHAP: Metadata must be an object")
    pattern = data.get("Pattern")
    if not isinstance(pattern, list):
        raise ValueError("AHAP: Pattern must be a list")
    transients, continuous = [], []
    for i, entry in enumerate(pattern):
        keys = set(entry) & {"Event", "ParameterCurve"} if isinstance(entry, dict) else set()
        if len(keys) != 1:
            raise ValueError(f"AHAP: Pattern[{i}] must hold exactly one Event or ParameterCurve")
        if "Event" in keys:
            kind, start, end = _check_event(entry["Event"], f"Pattern[{i}].Event")
            (transients if kind == "HapticTransient" else continuous).append((start, end, i))
        else:
            _check_curve(entry["ParameterCurve"], f"Pattern[{i}].ParameterCurve")
    _check_apart(transients, continuous)


def _check_apart(transients: list[tuple[float, float, int]], continuous: list[tuple[float, float, int]]) -> None:
    """ValueError if a transient (time, time, index) starts inside a continuous event (start, end, index)."""
    continuous = sorted(continuous)
    starts = [start for start, _, _ in continuous]
    latest, reach = [], None  # reach: the event reaching furthest among those started so far
    for event in continuous:
        reach = event if reach is None or event[1] > reach[1] else reach
        latest.append(reach)
    for time, _, i in transients:
        k = bisect.bisect_right(starts, time) - 1
        if k >= 0 and latest[k][1] > time:
            start, end, j = latest[k]
            raise ValueError(f"AHAP: transient Pattern[{i}] at {time} s inside the continuous event "
                             f"Pattern[{j}] ({start}-{end} s), keep transients apart from the continuous layer")


def write_ahap(track: HapticTrack, path: str | Path, tolerance: float = 0.02,
               metadata: dict | None = None) -> Path:
    """Export, validate and write `track` as an AHAP file atomically."""
    data = to_ahap(track, tolerance, metadata)
    validate_ahap(data)
    return write_text(path, json.dumps(data, indent=1) + "\n")

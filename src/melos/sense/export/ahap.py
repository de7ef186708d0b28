r"""Apple Core Haptics AHAP files (JSON): transient events, continuous events and parameter curves.

    {"Version": 1.0, "Metadata": {...}, "Pattern": [
        {"Event": {"Time", "EventType": "HapticTransient", "EventParameters": [intensity, sharpness]}},
        {"Event": {"Time", "EventType": "HapticContinuous", "EventDuration" <= 30 s, ...}},
        {"ParameterCurve": {"ParameterID": "HapticIntensityControl" | "HapticSharpnessControl",
                            "Time", "ParameterCurveControlPoints": [{"Time" (relative), "ParameterValue"}]}}]}

Intensity law (melos.sense.track): amplitudes are physical and Core Haptics intensity is felt
roughly quadratically, so the effective HapticIntensity of everything that plays, transients and
bed alike, is sqrt(amplitude).

The bed is a few long HapticContinuous events, cut only every 30 s (the longest event Core Haptics
plays) and where it is silent (amplitude < SILENT_AMPLITUDE) for at least
SILENCE_S; none is shorter than 10 ms. Every event plays at HapticIntensity B (the bed's loudest
sqrt(amplitude)) and sharpness 0.5, shaped by two curves: the intensity control (a multiplier,
0..1) = sqrt(amplitude) / B, the sharpness control (added, -1..1) = frequency - 0.5. Each envelope
is first averaged over SMOOTH_S (80 ms: touch follows modulation only up to about 10 Hz, spec
section 9, while a low-band RMS sampled every 20 ms jitters by +-0.15 between neighbours, which
would cost a control point every 20 ms), then simplified (Ramer-Douglas-Peucker, within
`tolerance` at every breakpoint) and cut into consecutive curves of at most 16 control points,
each starting where the previous one ends.

A curve acts on every event playing in the pattern, transients included, so a transient of
amplitude a at t plays at (its HapticIntensity) x c, c the intensity control at t. Around each
transient the control is ducked and the transient compensated:

    control    envelope  \  ramp  c  ramp  /  envelope        c = max(D / B, sqrt(a))
                      t - 10 ms    t    t + 40 ms               D = DUCK x min(sqrt(b), sqrt(a))
    bed at t       B x c                                        (b: the bed's amplitude at t)
    transient      HapticIntensity sqrt(a) / c  ->  effective sqrt(a)

(the ramps start and end on the envelope's own breakpoints where one is within 20 ms). c cannot
go below sqrt(a), as a transient's own HapticIntensity is at most 1. So the bed at a transient is
never louder than it (B x c <= sqrt(a), as B <= 1) and is D, half its envelope and at most half
the transient, wherever B x sqrt(a) <= D allows; where not (a strong tap on a quiet bed) the bed
at t rises to B x sqrt(a), under the tap. Windows that overlap merge (the control goes from one
duck to the next). Sharpness likewise, where needed: a transient plays at clip(own + offset), so
its own sharpness is sharpness - offset; where that would leave tolerance..1 - tolerance, the
sharpness control is moved there, by the same window, to the nearest offset that allows it.

Hence the rule `validate_ahap` checks instead of "no transient inside a continuous event": a
transient may play during a continuous event only where the bed is ducked, i.e. with an
intensity control point at its time and a HapticIntensity of at least the event's (the control
multiplies both, so the bed there is never louder than the transient).

Size: compact JSON, times to the ms, values to 3 decimals (see `to_ahap` for the measured sizes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...utils.atomic import write_text
from ..track import HapticTrack, Transient

MAX_EVENT_S = 30.0  # longest HapticContinuous event Core Haptics plays
MAX_CURVE_POINTS = 16  # control points per ParameterCurve
DUCK_BEFORE_S = 0.01  # the duck ramps down from this long before a transient
DUCK_AFTER_S = 0.04  # and is back on the envelope this long after it
SMOOTH_S = 0.08  # the envelopes are averaged over this long before they are simplified
EDGE_S = 0.02  # a window edge within this of an envelope breakpoint starts (ends) on that breakpoint
DUCK = 0.5  # the bed at a transient: at most this fraction of its envelope and of the transient (intensity)
SILENT_AMPLITUDE = 1e-3  # a bed below this amplitude is not felt ...
SILENCE_S = 0.25  # ... and a silent stretch this long ends a continuous event
MIN_EVENT_S = 0.01  # no continuous event is shorter
BASE_SHARPNESS = 0.5  # the continuous events' sharpness, which the sharpness control offsets
TIME_DECIMALS = 3  # ms
VALUE_DECIMALS = 3
ROUNDING = 10.0 ** -VALUE_DECIMALS  # the validator's slack for values rounded to 3 decimals
CURVE_RANGES = {"HapticIntensityControl": (0.0, 1.0), "HapticSharpnessControl": (-1.0, 1.0)}
EVENT_TYPES = ("HapticTransient", "HapticContinuous")

Anchor = tuple[float, float]  # (time, control value) the curve must pass through


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


def _ms(t: float) -> float:
    return round(float(t), TIME_DECIMALS)


def _ceil(value: float) -> float:
    """`value` rounded up to VALUE_DECIMALS (a control at a transient must not fall below sqrt(a))."""
    scale = 10 ** VALUE_DECIMALS
    return min(1.0, math.ceil(round(value * scale, 6)) / scale)


def _taps(track: HapticTrack) -> list[Transient]:
    """Transients in time order on the ms grid, one per ms (the strongest: two taps at one
    instant are one tap)."""
    taps: dict[float, Transient] = {}
    for tr in track.transients:
        t = _ms(tr.time)
        if t not in taps or tr.intensity > taps[t].intensity:
            taps[t] = Transient(t, tr.intensity, tr.sharpness, tr.layer)
    return [taps[t] for t in sorted(taps)]


def _bed_spans(times: np.ndarray, amplitude: np.ndarray) -> list[tuple[float, float]]:
    """Where the bed plays, as continuous events: its extent minus silent stretches of at least
    SILENCE_S, each part cut into equal events of at most MAX_EVENT_S, none under MIN_EVENT_S."""
    quiet = amplitude < SILENT_AMPLITUDE
    if quiet.all():
        return []
    edges = np.flatnonzero(np.diff(np.r_[False, quiet, False].astype(int)))
    silences = [(times[i], times[j - 1]) for i, j in zip(edges[::2], edges[1::2])
                if times[j - 1] - times[i] >= SILENCE_S]
    spans, cursor = [], float(times[0])
    for start, end in silences:
        spans.append((cursor, float(start)))
        cursor = float(end)
    spans.append((cursor, float(times[-1])))
    events = []
    for start, end in spans:
        start, end = _ms(start), _ms(end)
        if end - start < MIN_EVENT_S:
            continue
        cuts = [_ms(t) for t in np.arange(start, end, MAX_EVENT_S)] + [end]
        if len(cuts) > 2 and cuts[-1] - cuts[-2] < MIN_EVENT_S:  # no sliver at the end
            cuts[-2] = _ms((cuts[-3] + cuts[-1]) / 2)
        events += list(zip(cuts[:-1], cuts[1:]))
    return events


def smoothed(times: np.ndarray, values: np.ndarray, width: float = SMOOTH_S) -> np.ndarray:
    """The piecewise-linear envelope (`times`, `values` [N]) averaged over `width` seconds around
    each breakpoint [N] (over the part of the window inside the envelope's extent), computed on
    a 1 ms grid."""
    if len(times) < 2 or width <= 0:
        return values.astype(float)
    grid = np.arange(times[0], times[-1] + 5e-4, 1e-3)
    total = np.r_[0.0, np.cumsum(np.interp(grid, times, values))]  # [G + 1]
    lo = np.clip(np.searchsorted(grid, times - width / 2), 0, len(grid) - 1)
    hi = np.clip(np.searchsorted(grid, times + width / 2, side="right"), lo + 1, len(grid))
    return (total[hi] - total[lo]) / (hi - lo)


def _windows(anchors: list[Anchor]) -> list[list[Anchor]]:
    """Anchors (in time order) grouped into duck windows: one group while windows overlap."""
    groups: list[list[Anchor]] = []
    for anchor in anchors:
        if groups and anchor[0] - DUCK_BEFORE_S <= groups[-1][-1][0] + DUCK_AFTER_S:
            groups[-1].append(anchor)
        else:
            groups.append([anchor])
    return groups


def _inside(t: float, groups: list[list[Anchor]]) -> bool:
    return any(g[0][0] - DUCK_BEFORE_S < t < g[-1][0] + DUCK_AFTER_S for g in groups)


def _control_points(times: np.ndarray, values: np.ndarray, level: Callable[[float], float],
                    anchors: list[Anchor], tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """The control curve's breakpoints (ms times, rounded values): the envelope (`times`,
    `values`, `level(t)` anywhere) outside the duck windows, each window ramping from the envelope
    to its anchors and back; simplified within `tolerance`, the anchors kept exactly."""
    groups = _windows(anchors)
    outside = np.ones(len(times), dtype=bool)
    points: list[tuple[float, float, bool]] = []  # time, value, fixed
    for group in groups:
        start, end = group[0][0] - DUCK_BEFORE_S, group[-1][0] + DUCK_AFTER_S
        outside &= (times <= start) | (times >= end)
        # the ramps start and end on the envelope's own breakpoints where one is near
        if start > 0 and not np.any((times >= start - EDGE_S) & (times <= start)):
            points.append((start, level(start), False))
        points += [(t, v, True) for t, v in group]
        if not np.any((times >= end) & (times <= end + EDGE_S)):
            points.append((end, level(end), False))
    points += [(float(t), float(v), False) for t, v in zip(times[outside], values[outside])]
    by_ms: dict[float, tuple[float, bool]] = {}
    for t, v, fixed in sorted(points, key=lambda p: (p[0], not p[2])):  # an anchor wins its ms
        t = _ms(t)
        if t not in by_ms or (fixed and not by_ms[t][1]):
            by_ms[t] = (v, fixed)
    t = np.array(sorted(by_ms))
    v = np.array([by_ms[x][0] for x in t])
    fixed = np.array([by_ms[x][1] for x in t])
    keep = simplify(t, v, tolerance, fixed)
    return t[keep], np.round(v[keep], VALUE_DECIMALS)


def _curves(parameter: str, times: np.ndarray, values: np.ndarray) -> list[dict]:
    """Consecutive ParameterCurves of at most MAX_CURVE_POINTS, each starting at the previous end."""
    values = np.clip(values, *CURVE_RANGES[parameter])
    curves = []
    step = MAX_CURVE_POINTS - 1
    for start in range(0, max(len(times) - 1, 1), step):
        t = times[start:start + MAX_CURVE_POINTS]
        v = values[start:start + MAX_CURVE_POINTS]
        t0 = _ms(t[0])
        curves.append({"ParameterCurve": {
            "ParameterID": parameter,
            "Time": t0,
            "ParameterCurveControlPoints": [{"Time": _ms(ti - t0), "ParameterValue": _value(vi)}
                                            for ti, vi in zip(t, v)],
        }})
    return curves


def _value(x: float) -> float | int:
    """`x` to VALUE_DECIMALS, whole numbers as integers (1 instead of 1.0: shorter files)."""
    x = round(float(x), VALUE_DECIMALS) + 0.0  # + 0.0: no -0.0
    return int(x) if x.is_integer() else x


def _event(time: float, event_type: str, intensity: float, sharpness: float, duration: float | None = None) -> dict:
    event = {"Time": _ms(time), "EventType": event_type}
    if duration is not None:
        event["EventDuration"] = _ms(duration)
    event["EventParameters"] = [
        {"ParameterID": "HapticIntensity", "ParameterValue": _value(intensity)},
        {"ParameterID": "HapticSharpness", "ParameterValue": _value(sharpness)},
    ]
    return {"Event": event}


def to_ahap(track: HapticTrack, tolerance: float = 0.08, metadata: dict | None = None) -> dict:
    """The AHAP document of `track` (see the module docstring for the layout).

    Measured on three Wesnoth tracks (1:52-3:00, 2.8-4.6 transients a second): 55-102 kB per
    minute of music as written (about half of it the transient events, 191 bytes each), 4-6
    continuous events; the writer this replaced wrote 320-535 kB/min, one event per transient.

    Args:
        tolerance: largest error of a control curve at the envelope's breakpoints (in control
            units: intensity multiplier 0..1, sharpness offset)."""
    track.check()
    taps = _taps(track)
    c = track.continuous
    spans = _bed_spans(c.times, c.amplitude) if len(c.times) >= 2 else []
    pattern = []
    if not spans:  # no bed: no curves, each transient at its own values
        pattern += [_event(tr.time, "HapticTransient", math.sqrt(tr.intensity), tr.sharpness) for tr in taps]
    else:
        amplitude, frequency = smoothed(c.times, c.amplitude, SMOOTH_S), smoothed(c.times, c.frequency, SMOOTH_S)
        loudest = _ceil(math.sqrt(float(amplitude.max())))  # B: every event's HapticIntensity

        def envelope(t: float) -> float:  # the bed's (smoothed) intensity at t, 0 outside the bed
            return math.sqrt(float(np.interp(t, c.times, amplitude, left=0.0, right=0.0)))

        def offset(t: float) -> float:  # the sharpness control at t, the edge values outside the bed
            return float(np.interp(t, c.times, frequency)) - BASE_SHARPNESS

        ducks = [(tr.time, _ceil(max(DUCK * min(envelope(tr.time), math.sqrt(tr.intensity)) / loudest,
                                     math.sqrt(tr.intensity)))) for tr in taps]
        intensity = _control_points(c.times, np.sqrt(amplitude) / loudest, lambda t: envelope(t) / loudest,
                                    ducks, tolerance)
        sharpness = _control_points(c.times, frequency - BASE_SHARPNESS, offset,
                                    _sharpness_anchors(taps, offset, tolerance), tolerance)
        for tr in taps:
            control = float(np.interp(tr.time, *intensity))
            own = 1.0 if control == 0 else min(1.0, math.sqrt(tr.intensity) / control)
            shift = float(np.interp(tr.time, *sharpness))
            pattern.append(_event(tr.time, "HapticTransient", own, min(1.0, max(0.0, tr.sharpness - shift))))
        pattern += [_event(a, "HapticContinuous", loudest, BASE_SHARPNESS, b - a) for a, b in spans]
        pattern += _curves("HapticIntensityControl", *intensity)
        pattern += _curves("HapticSharpnessControl", *sharpness)
    pattern.sort(key=lambda entry: next(iter(entry.values()))["Time"])
    return {"Version": 1.0,
            "Metadata": {"Project": "melos", "Description": "haptics from music", **(metadata or {})},
            "Pattern": pattern}


def _sharpness_anchors(taps: list[Transient], offset: Callable[[float], float], tolerance: float) -> list[Anchor]:
    """Where the sharpness control must move: at each transient whose own sharpness
    (sharpness - offset) would fall outside tolerance..1 - tolerance, to the nearest offset that
    brings it inside 0..1, and at every transient inside such a window (where the control is no
    longer the envelope)."""
    anchored: dict[float, float] = {}
    changed = True
    while changed:
        changed = False
        groups = _windows(sorted(anchored.items()))
        for tr in taps:
            if tr.time in anchored:
                continue
            shift = offset(tr.time)
            if not tolerance <= tr.sharpness - shift <= 1 - tolerance or _inside(tr.time, groups):
                anchored[tr.time] = min(tr.sharpness, max(tr.sharpness - 1, shift))
                changed = True
    return sorted(anchored.items())


def _number(value, where: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ValueError(f"AHAP: {where} = {value!r}, must be a number in {lo:g}..{hi:g}")
    return float(value)


def _check_event(event, where: str) -> tuple[str, float, float, float]:
    """Validate one Event; return its type, start, end and HapticIntensity (1 if absent)."""
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
    intensity = 1.0
    for j, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise ValueError(f"AHAP: {where}.EventParameters[{j}] must be an object")
        name = parameter.get("ParameterID")
        bounds = (0.0, 1.0) if name in ("HapticIntensity", "HapticSharpness") else (-math.inf, math.inf)
        value = _number(parameter.get("ParameterValue"), f"{where}.EventParameters[{j}] ({name})", *bounds)
        intensity = value if name == "HapticIntensity" else intensity
    return kind, time, time + duration, intensity


def _check_curve(curve, where: str) -> list[float]:
    """Validate one ParameterCurve; return its control points' absolute times."""
    if not isinstance(curve, dict):
        raise ValueError(f"AHAP: {where} must be an object")
    name = curve.get("ParameterID")
    if name not in CURVE_RANGES:
        raise ValueError(f"AHAP: {where}.ParameterID {name!r}, must be one of {tuple(CURVE_RANGES)}")
    start = _number(curve.get("Time"), f"{where}.Time", 0.0)
    points = curve.get("ParameterCurveControlPoints")
    if not isinstance(points, list) or not 1 <= len(points) <= MAX_CURVE_POINTS:
        count = len(points) if isinstance(points, list) else points
        raise ValueError(f"AHAP: {where} has {count} control points, must have 1..{MAX_CURVE_POINTS}")
    previous, times = -math.inf, []
    for j, point in enumerate(points):
        if not isinstance(point, dict):
            raise ValueError(f"AHAP: {where}.ParameterCurveControlPoints[{j}] must be an object")
        time = _number(point.get("Time"), f"{where}.ParameterCurveControlPoints[{j}].Time", 0.0)
        if time <= previous:
            raise ValueError(f"AHAP: {where}.ParameterCurveControlPoints[{j}].Time {time} <= {previous} "
                             f"before it, times must increase")
        previous = time
        times.append(start + time)
        _number(point.get("ParameterValue"), f"{where}.ParameterCurveControlPoints[{j}] ({name})",
                *CURVE_RANGES[name])
    return times


def validate_ahap(data: dict) -> None:
    """Raise ValueError naming the broken rule unless `data` is a valid AHAP document.

    Rules: a numeric Version >= 1; Metadata an object if present; Pattern a list of objects, each
    holding one Event or one ParameterCurve; events: Time >= 0, EventType HapticTransient or
    HapticContinuous, HapticIntensity/HapticSharpness 0..1, continuous EventDuration in (0, 30] s;
    curves: HapticIntensityControl (values 0..1) or HapticSharpnessControl (-1..1), Time >= 0,
    1..16 control points with increasing times >= 0; a transient may start inside a continuous
    event only where the bed is ducked: with a HapticIntensityControl point at its time (to the
    ms) and a HapticIntensity at least the event's (to 0.001; absent counts as 1), so that the
    bed, scaled by the same control, is never louder than the transient."""
    if not isinstance(data, dict):
        raise ValueError("AHAP: the document must be an object")
    _number(data.get("Version"), "Version", 1.0)
    if "Metadata" in data and not isinstance(data["Metadata"], dict):
        raise ValueError("AHAP: Metadata must be an object")
    pattern = data.get("Pattern")
    if not isinstance(pattern, list):
        raise ValueError("AHAP: Pattern must be a list")
    transients, continuous, control_times = [], [], []
    for i, entry in enumerate(pattern):
        keys = set(entry) & {"Event", "ParameterCurve"} if isinstance(entry, dict) else set()
        if len(keys) != 1:
            raise ValueError(f"AHAP: Pattern[{i}] must hold exactly one Event or ParameterCurve")
        if "Event" in keys:
            kind, start, end, intensity = _check_event(entry["Event"], f"Pattern[{i}].Event")
            (transients if kind == "HapticTransient" else continuous).append((start, end, intensity, i))
        else:
            times = _check_curve(entry["ParameterCurve"], f"Pattern[{i}].ParameterCurve")
            if entry["ParameterCurve"]["ParameterID"] == "HapticIntensityControl":
                control_times += times
    _check_ducked(transients, continuous, np.sort(np.array(control_times)))


def _check_ducked(transients: list[tuple[float, float, float, int]], continuous: list[tuple[float, float, float, int]],
                  control_times: np.ndarray) -> None:
    """ValueError unless every transient (time, time, intensity, index) inside a continuous event
    (start, end, intensity, index) has an intensity control point at its time and an intensity
    at least the event's."""
    if not continuous or not transients:
        return
    starts, ends, levels = (np.array([e[k] for e in continuous]) for k in range(3))
    for time, _, intensity, i in transients:
        inside = np.flatnonzero((starts <= time) & (ends > time))
        if not len(inside):
            continue
        start, end, level, j = continuous[inside[np.argmax(levels[inside])]]
        where = f"AHAP: transient Pattern[{i}] at {time} s inside the continuous event Pattern[{j}] ({start}-{end} s)"
        k = np.searchsorted(control_times, time)
        near = control_times[max(k - 1, 0):k + 1]
        if not np.any(np.abs(near - time) <= 0.5 * 10 ** -TIME_DECIMALS + 1e-9):
            raise ValueError(f"{where} without a HapticIntensityControl point at its time: "
                             f"layers may overlap only where the bed is ducked")
        if intensity < level - ROUNDING:
            raise ValueError(f"{where} with HapticIntensity {intensity} below the event's {level}: "
                             f"the bed would be louder than the transient")


def write_ahap(track: HapticTrack, path: str | Path, tolerance: float = 0.08,
               metadata: dict | None = None) -> Path:
    """Export, validate and write `track` as an AHAP file (compact JSON) atomically."""
    data = to_ahap(track, tolerance, metadata)
    validate_ahap(data)
    return write_text(path, json.dumps(data, separators=(",", ":")) + "\n")

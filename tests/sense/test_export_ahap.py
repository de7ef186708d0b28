"""AHAP export: one intensity law (sqrt), few long events, ducks and compensated transients,
curves within tolerance, the size, and every validator rule."""

import copy
import json

import numpy as np
import pytest

from melos.sense.export import ahap
from melos.sense.export.ahap import simplify, smoothed, to_ahap, validate_ahap, write_ahap
from melos.sense.track import Continuous, HapticTrack, Transient


def _track(times, amplitude, frequency=None, transients=(), duration=None):
    times = np.asarray(times, dtype=float)
    amplitude = np.broadcast_to(np.asarray(amplitude, dtype=float), times.shape).copy()
    frequency = np.full_like(times, 0.5) if frequency is None else np.broadcast_to(
        np.asarray(frequency, dtype=float), times.shape).copy()
    return HapticTrack(duration or float(times[-1]), list(transients), Continuous(times, amplitude, frequency))


def _events(data, kind):
    return [e["Event"] for e in data["Pattern"] if "Event" in e and e["Event"]["EventType"] == kind]


def _curves(data, parameter):
    return sorted((e["ParameterCurve"] for e in data["Pattern"]
                   if "ParameterCurve" in e and e["ParameterCurve"]["ParameterID"] == parameter),
                  key=lambda c: c["Time"])


def _points(data, parameter):
    """Absolute (times, values) of every control point of `parameter`'s curves, in order."""
    times, values = [], []
    for curve in _curves(data, parameter):
        for point in curve["ParameterCurveControlPoints"]:
            times.append(curve["Time"] + point["Time"])
            values.append(point["ParameterValue"])
    return np.array(times), np.array(values)


def _control(data, parameter, t):
    """The control value a player applies at times `t`: curves in order, linear between points."""
    return np.interp(t, *_points(data, parameter))


def _param(event, name):
    return next(p["ParameterValue"] for p in event["EventParameters"] if p["ParameterID"] == name)


def _played(data, t):
    """(effective intensity, effective sharpness) of the transient at time t, as Core Haptics plays
    it: its own values times (plus) the controls there, clipped."""
    (event,) = [e for e in _events(data, "HapticTransient") if e["Time"] == t]
    intensity = _param(event, "HapticIntensity") * (_control(data, "HapticIntensityControl", t)
                                                    if _curves(data, "HapticIntensityControl") else 1.0)
    sharpness = _param(event, "HapticSharpness") + (_control(data, "HapticSharpnessControl", t)
                                                    if _curves(data, "HapticSharpnessControl") else 0.0)
    return min(1.0, intensity), min(1.0, max(0.0, sharpness))


def _bed(data, t):
    """The bed's effective intensity at t: its event's HapticIntensity times the control."""
    (event,) = [e for e in _events(data, "HapticContinuous") if e["Time"] <= t < e["Time"] + e["EventDuration"]]
    return _param(event, "HapticIntensity") * _control(data, "HapticIntensityControl", t)


def test_the_bed_plays_at_sqrt_of_its_amplitude_and_sharpness_is_an_offset():
    data = to_ahap(_track([0.0, 1.0, 2.0], 0.25, 0.8))
    validate_ahap(data)
    (event,) = _events(data, "HapticContinuous")
    assert (event["Time"], event["EventDuration"]) == (0.0, 2.0)
    assert (_param(event, "HapticIntensity"), _param(event, "HapticSharpness")) == (0.5, 0.5)  # B = sqrt(0.25)
    np.testing.assert_allclose(_points(data, "HapticIntensityControl")[1], 1.0)  # 0.5 x 1 = sqrt(0.25)
    np.testing.assert_allclose(_points(data, "HapticSharpnessControl")[1], 0.3)  # 0.5 + 0.3 = 0.8


def test_a_long_bed_is_events_of_at_most_30_s_and_none_under_10_ms():
    data = to_ahap(_track(np.linspace(0, 45, 46), 0.5))
    validate_ahap(data)
    spans = [(e["Time"], e["EventDuration"]) for e in _events(data, "HapticContinuous")]
    assert spans == [(0.0, 30.0), (30.0, 15.0)]
    data = to_ahap(_track([0.0, 60.005], 0.5))
    spans = [(e["Time"], e["EventDuration"]) for e in _events(data, "HapticContinuous")]
    assert spans == [(0.0, 30.0), (30.0, 15.002), (45.002, 15.003)]  # no 5 ms sliver


def test_the_bed_is_cut_only_where_it_is_silent_for_a_real_stretch():
    times = np.round(np.arange(0, 5.001, 0.02), 3)
    amplitude = np.where((times > 2.0) & (times < 3.0), 0.0, 0.3)  # 1 s of silence
    amplitude[(times > 4.0) & (times < 4.1)] = 0.0  # 100 ms: too short to end an event
    data = to_ahap(_track(times, amplitude))
    validate_ahap(data)
    spans = [(e["Time"], round(e["Time"] + e["EventDuration"], 3)) for e in _events(data, "HapticContinuous")]
    assert spans == [(0.0, 2.02), (2.98, 5.0)]
    blip = to_ahap(_track([0.0, 1.0, 1.004, 1.008, 2.0], [0.0, 0.0, 0.5, 0.0, 0.0]))  # 8 ms of bed
    validate_ahap(blip)
    assert _events(blip, "HapticContinuous") == []


def test_transients_alone_need_no_curves_and_one_instant_is_one_tap():
    data = to_ahap(HapticTrack(1.0, [Transient(0.5, 0.36, 0.6), Transient(0.8, 0.09, 0.1),
                                     Transient(0.8, 0.04, 0.9)]))
    validate_ahap(data)
    assert [next(iter(e)) for e in data["Pattern"]] == ["Event", "Event"]
    assert [(e["Time"], _param(e, "HapticIntensity"), _param(e, "HapticSharpness"))
            for e in _events(data, "HapticTransient")] == [(0.5, 0.6, 0.6), (0.8, 0.3, 0.1)]


def test_a_duck_under_a_weak_tap_on_a_loud_bed_is_below_both():
    """bed 0.16 (intensity 0.4 = B), tap 0.04 (0.2): D = 0.5 x min(0.4, 0.2) = 0.1, c = D / B = 0.25."""
    track = _track(np.linspace(0, 2, 101), 0.16, 0.5, transients=[Transient(1.0, 0.04, 0.5)])
    data = to_ahap(track)
    validate_ahap(data)
    assert _played(data, 1.0)[0] == pytest.approx(0.2, abs=1e-3)  # sqrt(0.04)
    assert _control(data, "HapticIntensityControl", 1.0) == pytest.approx(0.25, abs=1e-3)
    assert _bed(data, 1.0) == pytest.approx(0.1, abs=1e-3)  # half the tap, a quarter of the envelope
    outside = np.array([0.5, 0.98, 1.04, 1.5])  # the ramps: from the bed's breakpoint at or before t - 10 ms
    #                                               to the one at or after t + 40 ms
    np.testing.assert_allclose([_bed(data, t) for t in outside], 0.4, atol=1e-3)


def test_a_duck_under_a_strong_tap_floors_at_what_the_tap_needs():
    """bed 0.36 (0.6 = B), tap 0.49 (0.7): c must be >= 0.7 for the tap (its own intensity <= 1),
    so the bed at t is B x 0.7 = 0.42: below its envelope and the tap, not down to D = 0.3."""
    track = _track(np.linspace(0, 2, 101), 0.36, 0.9, transients=[Transient(1.0, 0.49, 0.2)])
    data = to_ahap(track)
    validate_ahap(data)
    intensity, sharpness = _played(data, 1.0)
    assert intensity == pytest.approx(0.7, abs=1e-3) and sharpness == pytest.approx(0.2, abs=1e-3)
    assert _bed(data, 1.0) == pytest.approx(0.42, abs=1e-3)
    # sharpness 0.2 under an offset of 0.4 needs the offset moved to 0.2 (own sharpness 0)
    assert _control(data, "HapticSharpnessControl", 1.0) == pytest.approx(0.2, abs=1e-3)
    np.testing.assert_allclose(_control(data, "HapticSharpnessControl", [0.5, 1.5]), 0.4, atol=1e-3)


def test_a_strong_tap_on_a_quiet_part_of_the_bed_is_still_louder_than_the_bed():
    """The bed's loudest part sets B = 0.8; a full tap at a quiet part (0.2) needs c = 1, so the
    bed there rises to 0.8 for the tap (documented), never above the tap."""
    times = np.linspace(0, 4, 201)
    track = _track(times, np.where(times < 2.5, 0.04, 0.64), transients=[Transient(1.0, 1.0, 0.5)])
    data = to_ahap(track)
    validate_ahap(data)
    assert _played(data, 1.0)[0] == pytest.approx(1.0)
    assert _bed(data, 1.0) == pytest.approx(0.8, abs=1e-3) and _bed(data, 1.0) <= _played(data, 1.0)[0]


def test_every_transient_plays_at_sqrt_of_its_amplitude_and_sharpness_over_a_moving_bed():
    rng = np.random.default_rng(1)
    times = np.round(np.arange(0, 20.001, 0.02), 3)
    amplitude = np.clip(0.3 + 0.25 * np.sin(times) + 0.1 * rng.standard_normal(len(times)), 0, 1)
    frequency = np.clip(0.5 + 0.4 * np.cos(times / 2) + 0.1 * rng.standard_normal(len(times)), 0, 1)
    taps = [Transient(round(float(t), 3), float(a), float(s))
            for t, a, s in zip(np.sort(rng.uniform(0, 20, 80)), rng.uniform(0, 1, 80), rng.uniform(0, 1, 80))]
    data = to_ahap(_track(times, amplitude, frequency, taps))
    validate_ahap(data)
    by_time = {}
    for tr in taps:
        if tr.intensity > by_time.get(tr.time, Transient(0, -1, 0)).intensity:
            by_time[tr.time] = tr
    for t, tr in by_time.items():
        intensity, sharpness = _played(data, t)
        assert intensity == pytest.approx(np.sqrt(tr.intensity), abs=1e-3)
        assert sharpness == pytest.approx(tr.sharpness, abs=1e-3)
        assert _bed(data, t) <= intensity + 1e-3  # never louder than the tap


def test_close_transients_share_one_window():
    track = _track(np.linspace(0, 2, 101), 0.25, transients=[Transient(1.0, 0.25, 0.5), Transient(1.03, 0.25, 0.5)])
    data = to_ahap(track)
    validate_ahap(data)
    times, _ = _points(data, "HapticIntensityControl")
    assert not np.any((times > 1.0) & (times < 1.03))  # from one duck straight to the next
    assert _played(data, 1.0)[0] == pytest.approx(0.5) and _played(data, 1.03)[0] == pytest.approx(0.5)


@pytest.mark.parametrize("tolerance", [0.02, 0.08])
def test_a_long_envelope_becomes_short_curves_within_tolerance(tolerance, monkeypatch):
    monkeypatch.setattr(ahap, "SMOOTH_S", 0.0)  # the simplification alone
    rng = np.random.default_rng(0)
    times = np.linspace(0, 9.9, 100)
    amplitude = np.clip(0.5 + 0.4 * np.sin(2 * np.pi * times / 2.5) + 0.05 * rng.standard_normal(100), 0, 1)
    frequency = np.clip(0.5 + 0.3 * np.cos(2 * np.pi * times / 1.5) + 0.05 * rng.standard_normal(100), 0, 1)
    data = to_ahap(_track(times, amplitude, frequency), tolerance=tolerance)
    validate_ahap(data)
    (event,) = _events(data, "HapticContinuous")
    loudest = _param(event, "HapticIntensity")
    assert loudest == pytest.approx(np.sqrt(amplitude.max()), abs=1e-3)
    slack = 1e-3  # values are rounded to 3 decimals
    for parameter, target, scale in (("HapticIntensityControl", np.sqrt(amplitude), loudest),
                                     ("HapticSharpnessControl", frequency - 0.5, 1.0)):
        curves = _curves(data, parameter)
        assert len(curves) >= 2 and all(len(c["ParameterCurveControlPoints"]) <= 16 for c in curves)
        for before, after in zip(curves, curves[1:]):  # each curve starts where the previous ends
            last = before["ParameterCurveControlPoints"][-1]
            assert after["Time"] == pytest.approx(before["Time"] + last["Time"])
            assert after["ParameterCurveControlPoints"][0]["ParameterValue"] == last["ParameterValue"]
        played = scale * _control(data, parameter, times)
        assert np.abs(played - target).max() <= scale * tolerance + slack
        assert sum(len(c["ParameterCurveControlPoints"]) for c in curves) < 100


def test_smoothing_is_the_mean_over_the_window_and_flattens_frame_jitter():
    times = np.round(np.arange(0, 2.001, 0.02), 3)
    values = 0.5 + 0.1 * (-1) ** np.arange(len(times))  # +-0.1 every 20 ms
    out = smoothed(times, values, 0.08)
    for i in (10, 11, 50):  # the mean of the piecewise-linear envelope over t +- 40 ms, densely
        t = np.linspace(times[i] - 0.04, times[i] + 0.04, 8001)
        assert out[i] == pytest.approx(np.interp(t, times, values).mean(), abs=2e-3)
    assert np.abs(out[5:-5] - 0.5).max() < 0.03
    np.testing.assert_allclose(smoothed(times, np.full(len(times), 0.3), 0.08), 0.3)


def test_a_dense_minute_is_small_and_few_events():
    rng = np.random.default_rng(2)
    times = np.round(np.arange(0, 60.001, 0.02), 3)
    amplitude = np.clip(0.3 + 0.2 * np.sin(times / 3) + 0.1 * rng.standard_normal(len(times)), 0, 0.6)
    frequency = np.clip(0.55 + 0.1 * rng.standard_normal(len(times)), 0, 1)
    taps = [Transient(round(t, 3), float(rng.uniform(0.05, 0.6)), float(rng.uniform(0.3, 0.8)))
            for t in np.arange(0.1, 60, 0.2)]  # 5 taps a second
    data = to_ahap(_track(times, amplitude, frequency, taps))
    validate_ahap(data)
    assert len(_events(data, "HapticContinuous")) == 2  # 0-30 s and 30-60 s
    assert len(json.dumps(data, separators=(",", ":"))) < 120_000  # 300 taps alone are 57 kB


def test_simplify_keeps_corners_and_required_points():
    t = np.linspace(0, 1, 11)
    assert list(simplify(t, 2 * t, 0.01)) == [0, 10]
    assert list(simplify(t, np.abs(t - 0.5), 0.01)) == [0, 5, 10]
    keep = np.zeros(11, dtype=bool)
    keep[3] = True
    assert list(simplify(t, 2 * t, 0.01, keep)) == [0, 3, 10]


def test_write_ahap_writes_the_validated_document_compactly(tmp_path):
    track = _track([0.0, 1.0], [0.1, 0.9], transients=[Transient(0.5, 1.0, 0.5)])
    path = write_ahap(track, tmp_path / "x.ahap")
    text = path.read_text()
    assert json.loads(text) == json.loads(json.dumps(to_ahap(track))) and ": " not in text and "\n" == text[-1]


def test_a_failing_validator_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ahap, "to_ahap", lambda *a, **k: {"Version": 1.0, "Pattern": "broken"})
    with pytest.raises(ValueError, match="Pattern must be a list"):
        ahap.write_ahap(_track([0.0, 1.0], 0.5), tmp_path / "x.ahap")
    assert list(tmp_path.iterdir()) == []


def _first(data, kind):
    return next(e["Event"] for e in data["Pattern"] if "Event" in e and e["Event"]["EventType"] == kind)


def _curve(data):
    return next(e["ParameterCurve"] for e in data["Pattern"] if "ParameterCurve" in e)


def _set_points(data, n):
    _curve(data)["ParameterCurveControlPoints"] = [{"Time": 0.01 * i, "ParameterValue": 0.5} for i in range(n)]


BROKEN = {
    "version missing": (lambda d: d.pop("Version"), "Version"),
    "version text": (lambda d: d.update(Version="1.0"), "Version"),
    "metadata not an object": (lambda d: d.update(Metadata=[]), "Metadata"),
    "pattern not a list": (lambda d: d.update(Pattern={}), "Pattern must be a list"),
    "entry with both": (lambda d: d["Pattern"][0].update(ParameterCurve={}), "exactly one"),
    "entry with neither": (lambda d: d["Pattern"].append({"Parameter": {}}), "exactly one"),
    "unknown event type": (lambda d: _first(d, "HapticTransient").update(EventType="AudioCustom"), "EventType"),
    "negative time": (lambda d: _first(d, "HapticTransient").update(Time=-0.1), r"Time = -0.1"),
    "intensity above 1": (lambda d: _first(d, "HapticTransient")["EventParameters"][0].update(ParameterValue=1.2),
                          "HapticIntensity"),
    "sharpness below 0": (lambda d: _first(d, "HapticContinuous")["EventParameters"][1].update(ParameterValue=-0.1),
                          "HapticSharpness"),
    "event over 30 s": (lambda d: _first(d, "HapticContinuous").update(EventDuration=30.5), "EventDuration"),
    "event of 0 s": (lambda d: _first(d, "HapticContinuous").update(EventDuration=0), "EventDuration is 0"),
    "unknown curve": (lambda d: _curve(d).update(ParameterID="AudioVolumeControl"), "ParameterID"),
    "17 control points": (lambda d: _set_points(d, 17), "17 control points"),
    "no control points": (lambda d: _set_points(d, 0), "0 control points"),
    "curve times not increasing": (lambda d: _curve(d)["ParameterCurveControlPoints"][1].update(Time=0.0),
                                   "times must increase"),
    "intensity control above 1": (
        lambda d: _curve(d)["ParameterCurveControlPoints"][0].update(ParameterValue=1.5), "HapticIntensityControl"),
    "transient where the bed is not ducked": (
        lambda d: _first(d, "HapticTransient").update(Time=0.3), "without a HapticIntensityControl point"),
    "transient softer than the bed": (
        lambda d: _first(d, "HapticTransient")["EventParameters"][0].update(ParameterValue=0.5),
        "below the event's 0.708"),  # B = sqrt(0.5), rounded up
}


@pytest.mark.parametrize("name", BROKEN)
def test_validator_rejects_each_broken_rule(name):
    data = to_ahap(_track(np.linspace(0, 2, 21), 0.5, transients=[Transient(1.0, 1, 1)]))
    validate_ahap(copy.deepcopy(data))
    breaks, message = BROKEN[name]
    breaks(data)
    with pytest.raises(ValueError, match=message):
        validate_ahap(data)


def test_transients_outside_the_bed_need_no_duck_and_rounding_is_allowed():
    data = to_ahap(_track([0.0, 1.0], 0.25, transients=[Transient(1.5, 0.5, 0.5)], duration=2.0))
    validate_ahap(data)  # after the bed: no continuous event to duck
    _first(data, "HapticContinuous")["EventParameters"][0]["ParameterValue"] = 1.0
    event = _first(data, "HapticTransient")
    event.update(Time=0.5)
    event["EventParameters"][0]["ParameterValue"] = 0.9995
    data["Pattern"].append({"ParameterCurve": {"ParameterID": "HapticIntensityControl", "Time": 0.5,
                                               "ParameterCurveControlPoints": [{"Time": 0, "ParameterValue": 1}]}})
    validate_ahap(data)  # 0.9995 is 1 to 3 decimals


def test_sharpness_control_range_is_minus_one_to_one():
    data = to_ahap(_track([0.0, 1.0], 0.5))
    curve = next(e["ParameterCurve"] for e in data["Pattern"]
                 if e.get("ParameterCurve", {}).get("ParameterID") == "HapticSharpnessControl")
    curve["ParameterCurveControlPoints"][0]["ParameterValue"] = -1.0
    validate_ahap(data)
    curve["ParameterCurveControlPoints"][0]["ParameterValue"] = -1.5
    with pytest.raises(ValueError, match="HapticSharpnessControl"):
        validate_ahap(data)

"""AHAP export: sqrt intensity, 30 s events, curves within tolerance, ducking, and every rule."""

import copy
import json

import numpy as np
import pytest

from melos.sense.export import ahap
from melos.sense.export.ahap import simplify, to_ahap, validate_ahap, write_ahap
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


def _control(data, parameter, t):
    """The control value a player applies at times `t`: curves in order, linear between points."""
    times, values = [], []
    for curve in _curves(data, parameter):
        for point in curve["ParameterCurveControlPoints"]:
            times.append(curve["Time"] + point["Time"])
            values.append(point["ParameterValue"])
    return np.interp(t, times, values)


def _param(event, name):
    return next(p["ParameterValue"] for p in event["EventParameters"] if p["ParameterID"] == name)


def test_intensity_is_sqrt_of_amplitude_and_sharpness_an_offset():
    data = to_ahap(_track([0.0, 1.0, 2.0], 0.25, 0.8))
    validate_ahap(data)
    (event,) = _events(data, "HapticContinuous")
    assert (event["Time"], event["EventDuration"]) == (0.0, 2.0)
    assert (_param(event, "HapticIntensity"), _param(event, "HapticSharpness")) == (1.0, 0.5)
    (intensity,) = _curves(data, "HapticIntensityControl")
    assert [p["ParameterValue"] for p in intensity["ParameterCurveControlPoints"]] == [0.5, 0.5]
    (sharpness,) = _curves(data, "HapticSharpnessControl")
    assert [p["ParameterValue"] for p in sharpness["ParameterCurveControlPoints"]] == [0.3, 0.3]


def test_a_45_s_layer_splits_into_events_of_at_most_30_s():
    data = to_ahap(_track(np.linspace(0, 45, 46), 0.5))
    validate_ahap(data)
    spans = [(e["Time"], e["EventDuration"]) for e in _events(data, "HapticContinuous")]
    assert spans == [(0.0, 30.0), (30.0, 15.0)]


@pytest.mark.parametrize("tolerance", [0.01, 0.03])
def test_a_long_envelope_becomes_short_curves_within_tolerance(tolerance):
    rng = np.random.default_rng(0)
    times = np.linspace(0, 9.9, 100)
    amplitude = np.clip(0.5 + 0.4 * np.sin(2 * np.pi * times / 2.5) + 0.05 * rng.standard_normal(100), 0, 1)
    frequency = np.clip(0.5 + 0.3 * np.cos(2 * np.pi * times / 1.5) + 0.05 * rng.standard_normal(100), 0, 1)
    data = to_ahap(_track(times, amplitude, frequency), tolerance=tolerance)
    validate_ahap(data)
    slack = 1e-4  # values are rounded to 4 decimals
    for parameter, target in (("HapticIntensityControl", np.sqrt(amplitude)),
                              ("HapticSharpnessControl", frequency - 0.5)):
        curves = _curves(data, parameter)
        assert len(curves) >= 2 and all(len(c["ParameterCurveControlPoints"]) <= 16 for c in curves)
        for before, after in zip(curves, curves[1:]):  # each curve starts where the previous ends
            last = before["ParameterCurveControlPoints"][-1]
            assert after["Time"] == pytest.approx(before["Time"] + last["Time"])
            assert after["ParameterCurveControlPoints"][0]["ParameterValue"] == last["ParameterValue"]
        assert np.abs(_control(data, parameter, times) - target).max() <= tolerance + slack
        assert sum(len(c["ParameterCurveControlPoints"]) for c in curves) < 100


def test_transients_are_apart_from_the_layer_and_see_neutral_controls():
    track = _track(np.linspace(0, 2, 201), 0.36, 0.9, transients=[Transient(1.0, 0.7, 0.2)])
    data = to_ahap(track)
    validate_ahap(data)
    (transient,) = _events(data, "HapticTransient")
    assert (transient["Time"], _param(transient, "HapticIntensity"), _param(transient, "HapticSharpness")) \
        == (1.0, 0.7, 0.2)
    spans = [(e["Time"], e["Time"] + e["EventDuration"]) for e in _events(data, "HapticContinuous")]
    assert spans == [(0.0, pytest.approx(0.99)), (pytest.approx(1.04), 2.0)]
    during = np.array([1.0, 1.01, 1.02])
    np.testing.assert_allclose(_control(data, "HapticIntensityControl", during), 1.0)
    np.testing.assert_allclose(_control(data, "HapticSharpnessControl", during), 0.0)
    outside = np.array([0.5, 0.99, 1.04, 1.5])
    np.testing.assert_allclose(_control(data, "HapticIntensityControl", outside), 0.6)
    np.testing.assert_allclose(_control(data, "HapticSharpnessControl", outside), 0.4)


def test_close_transients_share_one_duck_and_transients_alone_need_no_curves():
    track = _track(np.linspace(0, 2, 21), 0.5, transients=[Transient(1.0, 1, 1), Transient(1.03, 1, 1)])
    spans = [(e["Time"], e["EventDuration"]) for e in _events(to_ahap(track), "HapticContinuous")]
    assert [round(a + d, 6) for a, d in spans][0] == 0.99 and spans[1][0] == pytest.approx(1.07)
    alone = to_ahap(HapticTrack(1.0, [Transient(0.5, 0.4, 0.6)]))
    validate_ahap(alone)
    assert [next(iter(e)) for e in alone["Pattern"]] == ["Event"]


def test_simplify_keeps_corners_and_required_points():
    t = np.linspace(0, 1, 11)
    assert list(simplify(t, 2 * t, 0.01)) == [0, 10]
    assert list(simplify(t, np.abs(t - 0.5), 0.01)) == [0, 5, 10]
    keep = np.zeros(11, dtype=bool)
    keep[3] = True
    assert list(simplify(t, 2 * t, 0.01, keep)) == [0, 3, 10]


def test_write_ahap_writes_the_validated_document(tmp_path):
    track = _track([0.0, 1.0], [0.1, 0.9], transients=[Transient(0.5, 1.0, 0.5)])
    path = write_ahap(track, tmp_path / "x.ahap")
    assert json.loads(path.read_text()) == json.loads(json.dumps(to_ahap(track)))


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
    "transient inside the layer": (
        lambda d: _first(d, "HapticTransient").update(Time=0.3), "keep transients apart"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_validator_rejects_each_broken_rule(name):
    data = to_ahap(_track(np.linspace(0, 2, 21), 0.5, transients=[Transient(1.0, 1, 1)]))
    validate_ahap(copy.deepcopy(data))
    breaks, message = BROKEN[name]
    breaks(data)
    with pytest.raises(ValueError, match=message):
        validate_ahap(data)


def test_sharpness_control_range_is_minus_one_to_one():
    data = to_ahap(_track([0.0, 1.0], 0.5))
    curve = next(e["ParameterCurve"] for e in data["Pattern"]
                 if e.get("ParameterCurve", {}).get("ParameterID") == "HapticSharpnessControl")
    curve["ParameterCurveControlPoints"][0]["ParameterValue"] = -1.0
    validate_ahap(data)
    curve["ParameterCurveControlPoints"][0]["ParameterValue"] = -1.5
    with pytest.raises(ValueError, match="HapticSharpnessControl"):
        validate_ahap(data)

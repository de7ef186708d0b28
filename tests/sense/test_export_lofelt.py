"""Lofelt / Meta Haptics Studio `.haptic` export: envelopes, emphasis, padding, and every rule."""

import copy
import json

import numpy as np
import pytest

from melos.sense.export import lofelt
from melos.sense.export.lofelt import to_lofelt, validate_lofelt, write_lofelt
from melos.sense.track import Continuous, HapticTrack, Transient


def _track(times, amplitude, frequency, transients=(), duration=None):
    times = np.asarray(times, float)
    return HapticTrack(duration or float(times[-1]), list(transients),
                       Continuous(times, np.asarray(amplitude, float), np.asarray(frequency, float)))


def _envelopes(data):
    return data["signals"]["continuous"]["envelopes"]


def test_breakpoints_become_the_envelopes():
    data = to_lofelt(_track([0.0, 0.5, 1.0], [0.2, 0.6, 0.4], [0.1, 0.9, 0.5]))
    validate_lofelt(data)
    assert data["version"] == {"major": 1, "minor": 0, "patch": 0}
    assert _envelopes(data) == {
        "amplitude": [{"time": 0.0, "amplitude": 0.2}, {"time": 0.5, "amplitude": 0.6},
                      {"time": 1.0, "amplitude": 0.4}],
        "frequency": [{"time": 0.0, "frequency": 0.1}, {"time": 0.5, "frequency": 0.9},
                      {"time": 1.0, "frequency": 0.5}],
    }


def test_transients_become_emphasis_at_least_the_envelope():
    transients = [Transient(0.25, 0.9, 0.7), Transient(0.5, 0.3, 0.2), Transient(0.75, 0.1, 0.4)]
    data = to_lofelt(_track([0.0, 0.5, 1.0], [0.2, 0.6, 0.4], [0.5] * 3, transients))
    validate_lofelt(data)
    assert _envelopes(data)["amplitude"] == [
        {"time": 0.0, "amplitude": 0.2},
        {"time": 0.25, "amplitude": 0.4, "emphasis": {"amplitude": 0.9, "frequency": 0.7}},  # inserted
        {"time": 0.5, "amplitude": 0.6, "emphasis": {"amplitude": 0.6, "frequency": 0.2}},  # raised to 0.6
        {"time": 0.75, "amplitude": 0.5, "emphasis": {"amplitude": 0.5, "frequency": 0.4}},
        {"time": 1.0, "amplitude": 0.4},
    ]


def test_the_envelope_is_padded_to_the_track_with_steps_at_the_layer_edges():
    data = to_lofelt(_track([0.5, 1.0], [0.3, 0.3], [0.5, 0.5], duration=2.0))
    validate_lofelt(data)
    points = [(p["time"], p["amplitude"]) for p in _envelopes(data)["amplitude"]]
    assert points == [(0.0, 0.0), (0.5, 0.0), (0.5, 0.3), (1.0, 0.3), (1.0, 0.0), (2.0, 0.0)]


def test_a_track_of_transients_alone_has_two_points_and_its_emphasis():
    data = to_lofelt(HapticTrack(1.0, [Transient(0.4, 0.8, 0.6), Transient(0.4, 0.5, 0.1)]))
    validate_lofelt(data)
    envelopes = _envelopes(data)
    assert "frequency" not in envelopes
    assert envelopes["amplitude"] == [
        {"time": 0.0, "amplitude": 0.0},
        {"time": 0.4, "amplitude": 0.0, "emphasis": {"amplitude": 0.8, "frequency": 0.6}},  # the stronger
        {"time": 1.0, "amplitude": 0.0},
    ]


def test_write_lofelt_writes_the_validated_document(tmp_path):
    track = _track([0.0, 1.0], [0.1, 0.7], [0.2, 0.8], [Transient(0.5, 1.0, 1.0)])
    path = write_lofelt(track, tmp_path / "x.haptic", {"source": "song.wav"})
    data = json.loads(path.read_text())
    assert data == to_lofelt(track, {"source": "song.wav"}) and data["metadata"]["source"] == "song.wav"


def test_a_failing_validator_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(lofelt, "to_lofelt", lambda *a: {"version": {"major": 2}})
    with pytest.raises(ValueError, match="major 1"):
        lofelt.write_lofelt(HapticTrack(1.0), tmp_path / "x.haptic")
    assert list(tmp_path.iterdir()) == []


def _amp(d):
    return _envelopes(d)["amplitude"]


def _freq(d):
    return _envelopes(d)["frequency"]


BROKEN = {
    "major version 2": (lambda d: d["version"].update(major=2), "major 1"),
    "minor not an integer": (lambda d: d["version"].update(minor="0"), "version.minor"),
    "metadata not an object": (lambda d: d.update(metadata="x"), "metadata"),
    "no amplitude envelope": (lambda d: _envelopes(d).pop("amplitude"), "missing"),
    "one amplitude point": (lambda d: _envelopes(d).update(amplitude=_amp(d)[:1]), "at least two points"),
    "negative time": (lambda d: _amp(d)[0].update(time=-1.0), r"amplitude\[0\].time = -1.0"),
    "amplitude above 1": (lambda d: _amp(d)[2].update(amplitude=1.5), r"amplitude\[2\].amplitude = 1.5"),
    "amplitude missing": (lambda d: _amp(d)[2].pop("amplitude"), r"amplitude\[2\].amplitude = None"),
    "decreasing times": (lambda d: _amp(d)[2].update(time=0.1), r"amplitude\[2\].time 0.1 < 0.5"),
    "emphasis without frequency": (lambda d: _amp(d)[1]["emphasis"].pop("frequency"), "emphasis.frequency"),
    "emphasis above 1": (lambda d: _amp(d)[1]["emphasis"].update(amplitude=1.2), "emphasis.amplitude = 1.2"),
    "emphasis below the envelope": (lambda d: _amp(d)[1]["emphasis"].update(amplitude=0.1),
                                    "emphasis.amplitude 0.1 < the envelope's 0.6"),
    "frequency above 1": (lambda d: _freq(d)[0].update(frequency=2.0), r"frequency\[0\].frequency = 2.0"),
    "frequency times decreasing": (lambda d: _freq(d)[1].update(time=2.0), r"frequency\[2\].time 1.0 < 2.0"),
    "frequency not a list": (lambda d: _envelopes(d).update(frequency={}), "frequency envelope must be a list"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_validator_rejects_each_broken_rule(name):
    data = to_lofelt(_track([0.0, 0.5, 1.0], [0.2, 0.6, 0.4], [0.1, 0.9, 0.5], [Transient(0.5, 0.9, 0.5)]))
    validate_lofelt(copy.deepcopy(data))
    breaks, message = BROKEN[name]
    breaks(data)
    with pytest.raises(ValueError, match=message):
        validate_lofelt(data)

"""Android export: createWaveform steps, pulses and pauses; the Ogg file with haptic channels."""

import copy
import json

import numpy as np
import pytest
import soundfile as sf

from melos.sense.export import android
from melos.sense.export.android import (
    to_waveform,
    validate_haptic_ogg,
    validate_waveform,
    write_haptic_ogg,
    write_waveform,
)
from melos.sense.export.drive import render_drive
from melos.sense.export.ogg import read_ogg_tags, set_vorbis_tags
from melos.sense.track import Continuous, HapticTrack, Transient


def _bed(duration, level, transients=()):
    times = np.array([0.0, duration])
    return HapticTrack(duration, list(transients), Continuous(times, np.full(2, level), np.full(2, 0.5)))


def _plain(data):
    """The amplitude waveform alone: (timings, amplitudes)."""
    return data["timings"], data["amplitudes"]


def test_timings_sum_to_the_duration_in_10_ms_steps():
    data = to_waveform(HapticTrack(1.234))
    validate_waveform(data)
    assert data == {"timings": [1230], "amplitudes": [0], "repeat": -1, "onoff": {"timings": [1230], "repeat": -1}}
    data = to_waveform(_bed(2.0, 0.2, [Transient(0.5, 1.0, 0.5), Transient(1.2345, 0.6, 0.5)]))
    validate_waveform(data)
    assert sum(data["timings"]) == 2000 and all(ms % 10 == 0 for ms in data["timings"])
    assert sum(data["onoff"]["timings"]) == 2000


def test_amplitude_is_255_times_the_envelope():
    assert _plain(to_waveform(_bed(1.0, 0.2))) == ([1000], [51])
    ramp = HapticTrack(0.04, [], Continuous(np.array([0.0, 0.04]), np.array([0.0, 0.4]), np.zeros(2)))
    # step centres 5, 15, 25, 35 ms: 0.05 (below the floor: 0), 0.15, 0.25, 0.35 of full scale
    assert to_waveform(ramp)["amplitudes"] == [0, 38, 64, 89]


def test_the_bed_holds_its_level_until_it_moves_by_more_than_a_step():
    times = np.round(np.arange(0.005, 2.0, 0.01), 3)  # a breakpoint at every step's centre
    level = 0.4 + 0.025 * (-1) ** np.arange(len(times))  # 0.05 from one step to the next
    level[times >= 1.0] = 0.6  # a real move
    track = HapticTrack(2.0, [], Continuous(times, level, np.zeros(len(times))))
    timings, amplitudes = _plain(to_waveform(track))
    assert timings == [1000, 1000] and amplitudes == [108, 153]  # held at the first step's 0.425; 0.6
    # (the jitter alone made a segment of every 10 ms step before)


def test_a_bed_below_the_floor_is_off():
    assert _plain(to_waveform(_bed(1.0, 0.08))) == ([1000], [0])  # a motor does not render 8 %
    assert _plain(to_waveform(_bed(1.0, 0.1))) == ([1000], [26])


@pytest.mark.parametrize("pulse_ms, expected", [(20, ([500, 20, 480], [0, 255, 0])),
                                                (10, ([500, 10, 490], [0, 255, 0]))])
def test_a_transient_is_a_short_strong_pulse(pulse_ms, expected):
    data = to_waveform(HapticTrack(1.0, [Transient(0.5, 1.0, 0.5)]), pulse_ms=pulse_ms)
    assert _plain(data) == expected
    assert data["onoff"]["timings"] == expected[0]


def test_a_pulse_over_a_stronger_bed_keeps_the_bed():
    assert to_waveform(_bed(1.0, 0.8, [Transient(0.5, 0.5, 0.5)]))["amplitudes"] == [204]


def test_short_stops_inside_a_vibration_hold_amplitude_1_and_pauses_stay_0():
    close = to_waveform(HapticTrack(1.0, [Transient(0.5, 1.0, 0.5), Transient(0.53, 1.0, 0.5)]))
    assert _plain(close) == ([500, 20, 10, 20, 450], [0, 255, 1, 255, 0])
    apart = to_waveform(HapticTrack(1.0, [Transient(0.5, 1.0, 0.5), Transient(0.6, 1.0, 0.5)]))
    assert _plain(apart) == ([500, 20, 80, 20, 380], [0, 255, 0, 255, 0])
    dip = HapticTrack(0.1, [], Continuous(np.array([0.0, 0.04, 0.041, 0.059, 0.06, 0.1]),
                                          np.array([0.4, 0.4, 0.0, 0.0, 0.4, 0.4]), np.zeros(6)))
    data = to_waveform(dip)  # the envelope is 0 at the step centres 45 and 55 ms: held at 1
    assert _plain(data) == ([40, 20, 40], [102, 1, 102])


def test_the_onoff_pattern_pulses_the_stronger_half_of_the_transients_apart():
    taps = [Transient(0.0, 0.9, 0.5), Transient(0.2, 0.1, 0.5), Transient(0.5, 0.6, 0.5),
            Transient(0.54, 0.95, 0.5), Transient(0.8, 0.5, 0.5)]  # median 0.6
    data = to_waveform(_bed(1.0, 0.5, taps))
    validate_waveform(data)
    # 0.0 (starts on a pulse: off 0 first), 0.5; 0.2 too weak, 0.54 less than 50 ms after 0.5's pulse,
    # 0.8 below the median; the bed is left out
    assert data["onoff"] == {"timings": [0, 20, 480, 20, 480], "repeat": -1}


def test_write_waveform_writes_validated_json(tmp_path):
    track = _bed(1.0, 0.3, [Transient(0.2, 0.9, 0.5)])
    path = write_waveform(track, tmp_path / "w.json")
    assert json.loads(path.read_text()) == to_waveform(track)
    with pytest.raises(ValueError, match="pulse_ms"):
        write_waveform(track, tmp_path / "x.json", pulse_ms=30)
    assert not (tmp_path / "x.json").exists()


def _set(key, index, value):
    def breaks(data):
        data[key][index] = value
    return breaks


def _onoff(index, value):
    def breaks(data):
        data["onoff"]["timings"][index] = value
    return breaks


BROKEN = {
    "key missing": (lambda d: d.pop("repeat"), "must be an object with"),
    "onoff missing": (lambda d: d.pop("onoff"), "must be an object with"),
    "lengths differ": (lambda d: d["amplitudes"].pop(), "must be equal"),
    "empty": (lambda d: d.update(timings=[], amplitudes=[]), "must not be empty"),
    "timing not a 10 ms step": (_set("timings", 0, 15), r"timings\[0\] = 15"),
    "timing zero": (_set("timings", 1, 0), r"timings\[1\] = 0"),
    "timing not an integer": (_set("timings", 0, 500.0), r"timings\[0\] = 500.0"),
    "amplitude above 255": (_set("amplitudes", 1, 256), r"amplitudes\[1\] = 256"),
    "amplitude negative": (_set("amplitudes", 0, -1), r"amplitudes\[0\] = -1"),
    "amplitude not an integer": (_set("amplitudes", 1, 0.5), r"amplitudes\[1\] = 0.5"),
    "neighbours not merged": (_set("amplitudes", 2, 255), r"amplitudes\[2\] = amplitudes\[1\] = 255"),
    "repeat out of range": (lambda d: d.update(repeat=5), "repeat 5"),
    "zero inside a vibration": (_set("amplitudes", 2, 0), r"amplitudes\[2\] = 0 for 30 ms inside a vibration"),
    "onoff not an object": (lambda d: d.update(onoff=[500, 20]), "onoff must be an object"),
    "onoff pulse too long": (_onoff(1, 30), r"onoff.timings\[1\] = 30 ms on"),
    "onoff pause too short": (_onoff(2, 40), r"onoff.timings\[2\] = 40 ms off between two pulses"),
    "onoff zero after the start": (_onoff(2, 0), r"onoff.timings\[2\] = 0, must be a positive"),
    "onoff not a 10 ms step": (_onoff(0, 505), r"onoff.timings\[0\] = 505"),
    "onoff longer than the waveform": (_onoff(4, 420), "add up to 1010 ms, the amplitude waveform to 1000"),
    "onoff repeat out of range": (lambda d: d["onoff"].update(repeat=9), "onoff: repeat 9"),
}


@pytest.mark.parametrize("name", BROKEN)
def test_validator_rejects_each_broken_rule(name):
    data = {"timings": [500, 20, 30, 20, 430], "amplitudes": [0, 255, 1, 255, 0], "repeat": -1,
            "onoff": {"timings": [500, 20, 50, 20, 410], "repeat": -1}}
    validate_waveform(copy.deepcopy(data))
    breaks, message = BROKEN[name]
    breaks(data)
    with pytest.raises(ValueError, match=message):
        validate_waveform(data)


def _audio(sample_rate, seconds, n_channels):
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return np.stack([0.3 * np.sin(2 * np.pi * (440 + 110 * c) * t) for c in range(n_channels)])  # [C, N]


@pytest.mark.parametrize("n_channels, n_haptic", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_haptic_ogg_decodes_to_the_audio_then_the_drive(tmp_path, n_channels, n_haptic):
    """Android labels the decoded channels in stream order, audio first and the last ANDROID_HAPTIC
    ones haptic (OggExtractor.cpp setChannelMask), so that is where the drive must come out."""
    sample_rate = 16000
    audio = _audio(sample_rate, 1.0, n_channels)
    track = _bed(1.0, 0.5, [Transient(0.25, 1.0, 0.5)])
    path = write_haptic_ogg(audio if n_channels > 1 else audio[0], sample_rate, track, tmp_path / "a.ogg",
                            n_haptic=n_haptic)
    assert read_ogg_tags(path)["ANDROID_HAPTIC"] == str(n_haptic)
    assert f"ANDROID_HAPTIC={n_haptic}".encode() in path.read_bytes()[:4096]  # in the comment header
    validate_haptic_ogg(path)
    decoded, rate = sf.read(path)  # libogg checks every page's CRC: a bad one fails or drops audio
    assert rate == sample_rate and decoded.shape == (audio.shape[1], n_channels + n_haptic)
    drive = render_drive(track, sample_rate)
    sources = [*audio, drive]  # what each decoded channel may carry
    carried = [int(np.argmax([abs(np.corrcoef(decoded[:, c], x)[0, 1]) for x in sources]))
               for c in range(decoded.shape[1])]
    assert carried == list(range(n_channels)) + [n_channels] * n_haptic
    for c in range(decoded.shape[1]):
        assert np.corrcoef(decoded[:, c], sources[carried[c]])[0, 1] > 0.99
        others = [x for k, x in enumerate(sources) if k != carried[c]]
        assert max(abs(np.corrcoef(decoded[:, c], x)[0, 1]) for x in others) < 0.05
    haptic = decoded[sample_rate // 2:, -1]  # the bed alone: amplitude 0.5 of full scale
    assert np.sqrt(np.mean(haptic ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_haptic_ogg_is_written_in_blocks_without_losing_a_frame(tmp_path, monkeypatch):
    """libsndfile's Vorbis encoder crashes on one write of minutes of audio, so the writer goes in
    blocks; blocks of 1,000 frames (not a divisor of the length) give back every frame."""
    monkeypatch.setattr(android, "OGG_BLOCK", 1000)
    audio = _audio(16000, 0.7, 2)
    path = write_haptic_ogg(audio, 16000, _bed(0.7, 0.5), tmp_path / "b.ogg")
    decoded, _ = sf.read(path)
    assert decoded.shape == (audio.shape[1], 3) and np.corrcoef(decoded[:, 0], audio[0])[0, 1] > 0.99


def test_haptic_ogg_rejects_bad_arguments_and_leaves_no_file(tmp_path):
    audio = _audio(16000, 0.5, 2)
    track = _bed(0.5, 0.5)
    for kwargs, message in (({"n_haptic": 3}, "n_haptic"), ({"carrier_hz": 300.0}, "carrier_hz")):
        with pytest.raises(ValueError, match=message):
            write_haptic_ogg(audio, 16000, track, tmp_path / "a.ogg", **kwargs)
    with pytest.raises(ValueError, match="at most 8"):
        write_haptic_ogg(_audio(16000, 0.5, 7), 16000, track, tmp_path / "a.ogg", n_haptic=2)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_ogg_validator_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(android, "set_vorbis_tags", lambda path, tags: None)  # the tag never gets written
    with pytest.raises(ValueError, match="no ANDROID_HAPTIC"):
        write_haptic_ogg(_audio(16000, 0.5, 1), 16000, _bed(0.5, 0.5), tmp_path / "a.ogg")
    assert list(tmp_path.iterdir()) == []


def _ogg(path, n_channels, tags=None):
    sf.write(path, _audio(16000, 0.2, n_channels).T, 16000, format="OGG", subtype="VORBIS")
    if tags:
        set_vorbis_tags(path, tags)
    return path


@pytest.mark.parametrize("case, message", [
    ("untagged", "no ANDROID_HAPTIC"),
    ("three", "ANDROID_HAPTIC=3, must be 1..2"),
    ("text", "ANDROID_HAPTIC=one"),
    ("no audio", "at least one audio channel"),
    ("wav", "must be OGG/VORBIS"),
    ("not audio", "not a readable audio file"),
])
def test_ogg_validator_rejects_each_broken_rule(tmp_path, case, message):
    path = tmp_path / "x.ogg"
    if case == "untagged":
        _ogg(path, 2)
    elif case == "three":
        _ogg(path, 4, {"ANDROID_HAPTIC": "3"})
    elif case == "text":
        _ogg(path, 2, {"ANDROID_HAPTIC": "one"})
    elif case == "no audio":
        _ogg(path, 1, {"ANDROID_HAPTIC": "1"})
    elif case == "wav":
        sf.write(path, np.zeros(100), 16000, format="WAV")
    else:
        path.write_text("hello")
    with pytest.raises(ValueError, match=message):
        validate_haptic_ogg(path)

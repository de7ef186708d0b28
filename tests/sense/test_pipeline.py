"""`melos sense` end to end: a folder with good and broken files, every format, resume, the plot."""

import json

import numpy as np
import pytest
import soundfile as sf

from melos.cli import main
from melos.sense.export.drive import render_drive
from melos.sense.pipeline import _writers
from melos.sense.track import Continuous, HapticTrack, Transient

SR = 22050


def drums_and_bass(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """Clicks every 0.5 s over a 70 Hz bass tone, stereo."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 70 * t)
    for onset in np.arange(0.25, seconds, 0.5):
        k = int(onset * sr)
        x[k:k + 200] += 0.8 * np.exp(-np.arange(200) / 30) * np.random.default_rng(k).standard_normal(200)
    return np.stack([x, 0.8 * x], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    (root / "album").mkdir()
    sf.write(root / "album" / "one.wav", drums_and_bass(), SR)
    sf.write(root / "two.flac", drums_and_bass(2.0, 44100), 44100)
    (root / "broken.ogg").write_bytes(b"OggS not really")
    return root


def test_sense_on_a_folder_writes_every_format_and_names_bad_files(folder, tmp_path, capsys):
    out = tmp_path / "haptics"
    assert main(["sense", str(folder), "--out", str(out), "--no-progress", "--plot"]) == 1  # one bad file
    captured = capsys.readouterr()
    assert "haptics for 2 files" in captured.out and "broken.ogg" in captured.err
    rows = {json.loads(line)["path"]: json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()}
    assert rows[str(folder / "broken.ogg")]["status"] == "error"
    for name in ("album/one.wav", "two.flac"):
        files = sorted(p.name for p in (out / name).iterdir())
        assert files == ["analysis.json", "drive.wav", "haptics.ahap", "haptics.android.json", "haptics.haptic",
                         "haptics.ogg", "track.png"]
        assert rows[str(folder / name)]["status"] == "ok" and rows[str(folder / name)]["output"] == name
    analysis = json.loads((out / "album/one.wav" / "analysis.json").read_text())
    assert analysis["duration"] == pytest.approx(3.0, abs=0.01)
    onsets = np.array(analysis["onsets"])
    assert onsets[0] < 0.005  # the bass tone starts at full level at 0 s
    clicks = onsets[1:]
    assert len(clicks) >= 5 and np.min(np.abs(clicks[:, None] - np.arange(0.25, 3.0, 0.5)), axis=1).max() < 0.025
    info = sf.info(out / "album/one.wav" / "haptics.ogg")
    assert info.channels == 3 and info.samplerate == SR  # two audio channels + one haptic channel
    assert sf.info(out / "album/one.wav" / "drive.wav").samplerate == 8000
    assert (out / "album/one.wav" / "track.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_and_a_subset_of_formats(folder, tmp_path, capsys):
    out = tmp_path / "h"
    args = ["sense", str(folder / "album"), "--out", str(out), "--no-progress", "--formats", "ahap,wav"]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "one.wav").iterdir()) == ["analysis.json", "drive.wav", "haptics.ahap"]
    capsys.readouterr()
    assert main(args + ["--skip-existing"]) == 0
    assert "skipped 1 done earlier" in capsys.readouterr().out


@pytest.mark.parametrize("option, message", [
    (["--formats", "ahap,gif"], "unknown format(s) gif"),
    (["--carrier", "400"], "carrier_hz must be 150-250 Hz"),
    (["--min-gap", "0.01"], "--min-gap must be 0.05-0.2 s"),
])
def test_bad_options_are_one_line_errors(folder, tmp_path, capsys, option, message):
    assert main(["sense", str(folder / "two.flac"), "--out", str(tmp_path / "x"), "--no-progress", *option]) == 2
    assert message in capsys.readouterr().err


def test_every_format_plays_a_transient_and_the_bed_at_the_same_physical_amplitude(tmp_path):
    """One intensity law (melos.sense.track): read each written file back the way its device does
    and recover the track's amplitudes: a transient of 0.49 at 1 s over a bed of 0.16."""
    sr = 16000
    times = np.linspace(0.0, 2.0, 101)
    track = HapticTrack(2.0, [Transient(0.5, 0.25, 0.3), Transient(1.0, 0.49, 0.6)],
                        Continuous(times, np.full(101, 0.16), np.full(101, 0.5)))
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr))[None]  # [1, N]
    files = {}
    for fmt, (name, write) in _writers(170.0).items():
        if fmt in ("ahap", "android", "haptic", "wav", "ogg"):
            write(tmp_path / name, audio, sr, track, None, "x")
            files[fmt] = tmp_path / name

    ahap = json.loads(files["ahap"].read_text())  # effective intensity = own x control, squared
    points = [(c["ParameterCurve"]["Time"] + p["Time"], p["ParameterValue"]) for c in ahap["Pattern"]
              if c.get("ParameterCurve", {}).get("ParameterID") == "HapticIntensityControl"
              for p in c["ParameterCurve"]["ParameterCurveControlPoints"]]
    control = lambda t: np.interp(t, *zip(*sorted(points)))  # noqa: E731
    events = [e["Event"] for e in ahap["Pattern"] if "Event" in e]
    tap = next(e for e in events if e["EventType"] == "HapticTransient" and e["Time"] == 1.0)
    bed = next(e for e in events if e["EventType"] == "HapticContinuous")
    own = {e["EventType"]: e["EventParameters"][0]["ParameterValue"] for e in (tap, bed)}
    assert (own["HapticTransient"] * control(1.0)) ** 2 == pytest.approx(0.49, abs=2e-3)
    assert (own["HapticContinuous"] * control(0.3)) ** 2 == pytest.approx(0.16, abs=2e-3)

    haptic = json.loads(files["haptic"].read_text())["signals"]["continuous"]["envelopes"]["amplitude"]
    emphasis = next(p for p in haptic if p["time"] == 1.0)["emphasis"]["amplitude"]
    assert emphasis == pytest.approx(0.49) and next(p for p in haptic if p["time"] == 0.3)["amplitude"] == 0.16

    android = json.loads(files["android"].read_text())
    starts = np.cumsum([0] + android["timings"][:-1])
    level = lambda ms: android["amplitudes"][np.searchsorted(starts, ms, side="right") - 1] / 255  # noqa: E731
    assert level(1005) == pytest.approx(0.49, abs=0.5 / 255) and level(300) == pytest.approx(0.16, abs=0.5 / 255)

    for fmt, rate in (("wav", 8000), ("ogg", sr)):
        signal, got = sf.read(files[fmt])
        drive = signal if signal.ndim == 1 else signal[:, -1]  # the Ogg's haptic channel is the last
        full = render_drive(HapticTrack(2.0, [Transient(1.0, 1.0, 0.5)]), rate)  # a full-scale burst there
        burst = slice(int(1.0 * rate), int(1.02 * rate))
        bed = slice(int(0.2 * rate), int(0.4 * rate))  # 34 carrier periods
        assert got == rate
        assert np.abs(drive[burst]).max() / np.abs(full[burst]).max() == pytest.approx(0.49, rel=0.02)
        assert np.sqrt(2 * np.mean(drive[bed] ** 2)) == pytest.approx(0.16, rel=0.02)

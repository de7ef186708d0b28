"""`melos sense` end to end: a folder with good and broken files, every format, resume, the plot."""

import json

import numpy as np
import pytest
import soundfile as sf

from melos.cli import main

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

"""melos data scan: durations from headers, bad files listed, manifests round-trip."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melos.cli import main
from melos.data.manifest import ManifestRow, fill_durations, read_manifest, scan_folder, write_manifest


def test_scan_reads_durations_and_skips_bad_files(tmp_path):
    folder = tmp_path / "makam"
    (folder / "a").mkdir(parents=True)
    sf.write(folder / "a" / "one.wav", np.zeros(24000 * 2, dtype=np.float32), 24000)
    sf.write(folder / "two.flac", np.zeros((44100 * 3, 2)), 44100)
    (folder / "broken.ogg").write_bytes(b"OggS but not really")
    result = scan_folder(folder, culture="turkish-makam", progress=False)
    assert [(r.path.split("/")[-1], r.duration, r.source, r.culture) for r in result.rows] == [
        ("one.wav", 2.0, "makam", "turkish-makam"), ("two.flac", 3.0, "makam", "turkish-makam")]
    assert list(result.failed) == [str(folder / "broken.ogg")]
    assert result.hours == pytest.approx(5 / 3600)


def test_manifest_round_trip_and_relative_paths(tmp_path):
    rows = [ManifestRow(str(tmp_path / "x.wav"), 1.5, "s", None, ["a", "b"])]
    write_manifest(rows, tmp_path / "m.jsonl")
    assert read_manifest(tmp_path / "m.jsonl") == rows
    (tmp_path / "rel.jsonl").write_text(json.dumps({"path": "sub/y.wav", "split": "train"}) + "\n")
    assert read_manifest(tmp_path / "rel.jsonl")[0].path == str(tmp_path / "sub" / "y.wav")
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_manifest(tmp_path / "bad.jsonl")


def test_cli_scan(tmp_path, capsys):
    sf.write(tmp_path / "one.wav", np.zeros(2400, dtype=np.float32), 24000)
    assert main(["data", "scan", str(tmp_path), "--out", str(tmp_path / "m.jsonl"), "--no-progress"]) == 0
    assert "1 files" in capsys.readouterr().out
    assert read_manifest(tmp_path / "m.jsonl")[0].duration == pytest.approx(0.1)


def test_missing_manifest_and_empty_folder_explain_themselves(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="nope.jsonl: manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty").mkdir()
    assert main(["embed", "--model", "mert-tiny", "--input", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "out"), "--no-progress"]) == 2
    assert "no audio files in this folder" in capsys.readouterr().err


def test_missing_durations_are_read_from_headers(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(24000 * 3, dtype=np.float32), 24000)
    sf.write(tmp_path / "b.flac", np.zeros(22050 * 2, dtype=np.float32), 22050)
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    lines = [{"path": "a.wav"}, {"path": "b.flac", "duration": 9.5, "culture": "x"}, {"path": "bad.wav"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = read_manifest(tmp_path / "m.jsonl")
    filled, failed = fill_durations(rows, progress=False)
    assert [(Path(r.path).name, r.duration, r.culture) for r in filled] == [("a.wav", 3.0, None), ("b.flac", 9.5, "x")]
    assert list(failed) == [str(tmp_path / "bad.wav")] and "not a readable audio file" in failed[str(tmp_path / "bad.wav")]
    assert rows[0].duration is None  # the caller's rows are left as they were


def test_scan_fails_a_truncated_file_unless_allowed(tmp_path, capsys):
    folder = tmp_path / "music"
    folder.mkdir()
    sf.write(folder / "whole.wav", np.zeros(24000, dtype=np.float32), 24000)
    sf.write(folder / "partial.flac", np.random.default_rng(0).uniform(-0.5, 0.5, 24000 * 4), 24000)
    data = (folder / "partial.flac").read_bytes()
    (folder / "partial.flac").write_bytes(data[: len(data) // 2])  # a partial download
    result = scan_folder(folder, progress=False)
    assert [Path(r.path).name for r in result.rows] == ["whole.wav"]
    assert result.failed[str(folder / "partial.flac")].startswith("file is truncated: header declares 96000 frames")
    allowed = scan_folder(folder, progress=False, allow_truncated=True)
    partial = allowed.rows[0]
    assert Path(partial.path).name == "partial.flac" and 0.5 < partial.duration < 2.5 and not allowed.failed
    args = ["data", "scan", str(folder), "--out", str(tmp_path / "m.jsonl"), "--no-progress"]
    assert main(args) == 0 and "skipped" in capsys.readouterr().err
    assert main([*args, "--allow-truncated"]) == 0 and len(read_manifest(tmp_path / "m.jsonl")) == 2

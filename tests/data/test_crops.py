"""Random crops: deterministic per step, replay fraction, duration weighting, bad and short files."""

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.data.crops import CropBatcher, CropSource, take_hours
from melos.data.manifest import ManifestRow


def constant_file(path, value, seconds, rate=24000):
    """A file whose every sample is `value`: a crop tells which file it came from."""
    sf.write(path, np.full(int(seconds * rate), value, dtype=np.float32), rate, subtype="FLOAT")
    return ManifestRow(str(path), seconds)


@pytest.fixture
def sources(tmp_path):
    makam = [constant_file(tmp_path / "m1.wav", 0.1, 3.0), constant_file(tmp_path / "m2.wav", 0.2, 9.0),
             constant_file(tmp_path / "short.wav", 0.9, 0.5)]
    western = [constant_file(tmp_path / "w1.wav", -0.5, 4.0)]
    return makam, western


def test_batches_are_a_function_of_the_step(sources):
    makam, western = sources
    batcher = CropBatcher([CropSource("makam", makam)], crop_seconds=1.0, seed=3)
    a, _ = batcher.batch(7, 4)
    b, _ = CropBatcher([CropSource("makam", makam)], crop_seconds=1.0, seed=3).batch(7, 4)
    assert a.shape == (4, 24000) and torch.equal(a, b)
    assert not torch.equal(a, batcher.batch(8, 4)[0]) or not torch.equal(a, batcher.batch(9, 4)[0])
    assert batcher.n_short == 1  # short.wav never sampled
    assert not (a == 0.9).any()


def test_replay_fraction_and_duration_weighting(sources):
    makam, western = sources
    batcher = CropBatcher([CropSource("makam", makam)], crop_seconds=1.0, replay=CropSource("western", western),
                          replay_fraction=0.2, seed=0)
    counts = {0.1: 0, 0.2: 0}
    for step in range(60):
        audio, names = batcher.batch(step, 10)
        assert names.count("western") == 2 and (audio[:2] == -0.5).all()
        for clip in audio[2:]:
            counts[round(clip[0].item(), 1)] += 1
    # files are sampled in proportion to their duration: 3 s vs 9 s -> about 1 : 3
    share = counts[0.2] / (counts[0.1] + counts[0.2])
    assert share == pytest.approx(0.75, abs=0.06)


def test_source_weights(sources, tmp_path):
    makam, western = sources
    batcher = CropBatcher([CropSource("makam", makam, weight=200), CropSource("western", western, weight=50)],
                          crop_seconds=1.0, seed=1)
    names = [n for step in range(50) for n in batcher.batch(step, 10)[1]]
    assert names.count("makam") / len(names) == pytest.approx(0.8, abs=0.05)


def test_corrupt_file_is_logged_once_and_skipped(sources, tmp_path, caplog):
    makam, _ = sources
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not a wav")
    rows = makam + [ManifestRow(str(tmp_path / "bad.wav"), 100.0)]  # long: sampled first
    batcher = CropBatcher([CropSource("makam", rows)], crop_seconds=1.0, seed=0)
    with caplog.at_level(logging.WARNING):
        for step in range(5):
            audio, _ = batcher.batch(step, 4)
            assert ((audio == 0.1) | (audio == 0.2)).all()
    assert batcher.bad == {str(tmp_path / "bad.wav")}
    assert sum("bad.wav" in r.getMessage() for r in caplog.records) == 1


def test_take_hours_and_errors(sources):
    makam, western = sources
    subset = take_hours(makam, hours=8 / 3600, seed=0)
    assert sum(r.duration for r in subset) >= 8 and len(subset) <= len(makam)
    with pytest.raises(ValueError, match=r"at least 10 s long \(3 shorter\)$"):
        CropBatcher([CropSource("makam", makam)], crop_seconds=10.0)
    undated = [ManifestRow(r.path) for r in makam]
    with pytest.raises(ValueError, match=r"\(0 shorter; 3 rows have no duration \(fill them from the file headers"):
        CropBatcher([CropSource("makam", undated)], crop_seconds=1.0)
    with pytest.raises(ValueError, match="replay"):
        CropBatcher([CropSource("makam", makam)], replay_fraction=0.2)


def test_truncated_file_is_dropped_unless_allowed(tmp_path, caplog):
    row = constant_file(tmp_path / "partial.wav", 0.3, 4.0)
    data = (tmp_path / "partial.wav").read_bytes()
    (tmp_path / "partial.wav").write_bytes(data[: len(data) // 2])  # 2 s of the 4 s the header declares
    row.duration = 2.0  # as `melos data scan --allow-truncated` lists it
    with caplog.at_level(logging.WARNING):
        with pytest.raises(RuntimeError, match="no readable file left"):
            CropBatcher([CropSource("makam", [row])], crop_seconds=1.0).batch(0, 2)
        audio, _ = CropBatcher([CropSource("makam", [row])], crop_seconds=1.0, allow_truncated=True).batch(0, 2)
    assert audio.shape == (2, 24000) and (audio == 0.3).all()
    assert sum("partial.wav" in r.getMessage() and "file is truncated" in r.getMessage() for r in caplog.records) == 2

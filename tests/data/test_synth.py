"""melos.data.synth: clips are sane audio, deterministic, labelled with what they contain, and a
corpus is written atomically, resumably and reproducibly."""

import json

import numpy as np
import pytest
import soundfile as sf

from melos.data.synth import SAMPLE_RATE, TRADITIONS, clip_seed, compose, render_clip, render_stems, write_corpus
from melos.data.synth.corpus import assign_splits
from melos.data.synth.dsp import karplus_strong
from melos.data.synth.tunings import TONICS, TUNING_CENTS, WESTERN_KEYS


@pytest.mark.parametrize("tradition", TRADITIONS)
def test_clip_is_sane_audio(tradition):
    audio, labels = render_clip(tradition, 7, seconds=1.3)
    assert audio.dtype == np.float32 and audio.shape == (int(1.3 * SAMPLE_RATE),)
    assert np.isfinite(audio).all()
    peak = np.abs(audio).max()
    assert 10 ** (-9.5 / 20) < peak <= 10 ** (-0.9 / 20)  # -3 dBFS, -6..+2 dB
    assert np.sqrt(np.mean(audio ** 2)) > 0.01 * peak
    assert labels["tradition"] == tradition and labels["mode"].startswith(f"{tradition}/")
    assert abs(cents_from_home(labels)) <= TUNING_CENTS and labels["seconds"] == 1.3


def cents_from_home(labels: dict) -> float:
    """Cents between a clip's tonic and where its tradition puts that mode (western: nearest key)."""
    homes = WESTERN_KEYS if labels["tradition"] == "western" else (TONICS[labels["mode"]],)
    return min((1200 * np.log2(labels["tonic_hz"] / home) for home in homes), key=abs)


def test_same_seed_same_clip_other_seed_other_clip():
    a, la = render_clip("makam", 3, seconds=1.0)
    b, lb = render_clip("makam", 3, seconds=1.0)
    assert np.array_equal(a, b) and la == lb
    c, _ = render_clip("makam", 4, seconds=1.0)
    assert not np.allclose(a, c)
    d, _ = render_clip("raga", 3, seconds=1.0)  # a seed means different music in each tradition
    assert not np.allclose(a, d)


def test_parameters_vary_across_clips():
    labels = [compose(t, s, 2.0).labels() for t in TRADITIONS for s in range(12)]
    for tradition in TRADITIONS:
        mine = [lab for lab in labels if lab["tradition"] == tradition]
        assert len({lab["mode"] for lab in mine}) >= 2 and len({lab["metre"] for lab in mine}) >= 2
        assert len({frozenset(lab["instruments"]) for lab in mine}) >= 3
        offsets = [cents_from_home(lab) for lab in mine]  # tuned around the tradition's convention
        assert max(np.abs(offsets)) <= TUNING_CENTS and np.ptp(offsets) > 10 and np.ptp([lab["tempo_bpm"] for lab in mine]) > 10
        assert all(3 <= len(lab["instruments"]) <= 5 for lab in mine)
    makam = {lab["metre"] for lab in labels if lab["tradition"] == "makam"}
    assert makam <= {"9/8 (2+2+2+3)", "7/8 (3+2+2)", "10/8 (3+2+2+3)"}


@pytest.mark.parametrize("tradition", TRADITIONS)
def test_labelled_instruments_are_the_rendered_stems(tradition):
    stems, labels = render_stems(tradition, 11, seconds=2.0)
    assert list(stems) == labels["instruments"] == [p["instrument"] for p in labels["parts"]]
    roles = {p["role"] for p in labels["parts"]}
    assert "melody" in roles and "percussion" in roles and roles & {"accompaniment", "drone", "heterophony"}
    for row in labels["parts"]:
        stem = stems[row["instrument"]]
        assert stem.shape == (2 * SAMPLE_RATE,) and np.sqrt(np.mean(stem ** 2)) > 0.01
        if min(row["onsets"]) > 0.2:  # silent until the part's first onset
            assert np.abs(stem[:int((min(row["onsets"]) - 0.01) * SAMPLE_RATE)]).max() < 1e-6


def test_plucked_string_is_exactly_tuned():
    rng = np.random.default_rng(0)
    for f0 in (61.7, 233.1, 987.8):
        y = karplus_strong(f0, 12000, rng, decay_s=1.0, damping=0.5)
        spec = np.abs(np.fft.rfft(y[1200:] * np.hanning(10800), 1 << 20))
        f = np.argmax(spec[:int(1.2 * f0 * (1 << 20) / SAMPLE_RATE)]) * SAMPLE_RATE / (1 << 20)
        assert abs(1200 * np.log2(f / f0)) < 1.5  # an integer delay line would be up to 30 cents off at 1 kHz
        assert np.abs(y[-1200:]).max() < 0.2 * np.abs(y[:1200]).max()  # it decays; the FFT loop does not wrap


def test_splits_are_exact_and_stable():
    splits = assign_splits(20, {"train": 0.7, "valid": 0.15, "test": 0.15}, 0, "raga")
    assert (splits.count("train"), splits.count("valid"), splits.count("test")) == (14, 3, 3)
    assert splits == assign_splits(20, {"train": 0.7, "valid": 0.15, "test": 0.15}, 0, "raga")
    assert splits != assign_splits(20, {"train": 0.7, "valid": 0.15, "test": 0.15}, 1, "raga")
    assert clip_seed(0, "raga", 1) == clip_seed(0, "raga", 1) != clip_seed(0, "raga", 2)


def test_write_corpus_is_reproducible_and_resumable(tmp_path):
    counts = {"western": 2, "greek": 2}
    manifest = write_corpus(tmp_path / "a", counts, seconds=1.0, seed=5, progress=False, workers=1)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["path"] for r in rows] == ["western/western-0.flac", "western/western-1.flac",
                                         "greek/greek-0.flac", "greek/greek-1.flac"]
    for row in rows:
        audio, sr = sf.read(tmp_path / "a" / row["path"], dtype="float32")
        assert sr == SAMPLE_RATE and audio.shape == (SAMPLE_RATE,)
        assert row["culture"] == row["meta"]["tradition"] and row["duration"] == 1.0
        assert row["split"] in ("train", "valid", "test")
        assert row["labels"] == [row["meta"]["mode"], row["meta"]["metre"], *row["meta"]["instruments"]]
    index = int(rows[0]["path"].split("-")[1].split(".")[0])
    expected, _ = render_clip("western", clip_seed(5, "western", index), 1.0)
    assert np.abs(sf.read(tmp_path / "a" / rows[0]["path"], dtype="float32")[0] - expected).max() < 1 / 32767 + 1e-6

    files = sorted((tmp_path / "a").rglob("*.flac"))
    stamps = [f.stat().st_mtime_ns for f in files]
    text = manifest.read_text()
    (files[0]).unlink()  # an interrupted run: only the missing clip is rendered again
    write_corpus(tmp_path / "a", counts, seconds=1.0, seed=5, progress=False, workers=1)
    assert manifest.read_text() == text
    assert [f.stat().st_mtime_ns for f in files[1:]] == stamps[1:] and files[0].exists()
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.endswith(".tmp")]

    write_corpus(tmp_path / "b", counts, seconds=1.0, seed=5, progress=False, workers=2)
    assert (tmp_path / "b" / "manifest.jsonl").read_text() == text
    assert all(f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes() for f in files)


def test_write_corpus_rejects_unknown_traditions(tmp_path):
    with pytest.raises(ValueError, match="jazz"):
        write_corpus(tmp_path, {"jazz": 1}, progress=False)


def test_cli_writes_a_corpus_with_ground_truth_onsets(tmp_path, capsys):
    from melos.cli import main

    assert main(["data", "synth", str(tmp_path / "c"), "--clips", "1", "--seconds", "1.5", "--no-progress"]) == 0
    assert "4 clips of 1.5 s" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["culture"] for r in rows) == ["greek", "makam", "raga", "western"]
    for row in rows:
        assert sf.info(tmp_path / "c" / row["path"]).duration == pytest.approx(1.5)
        assert all(0 <= t < 1.5 for part in row["meta"]["parts"] for t in part["onsets"] if t >= 0)
    assert main(["data", "synth", str(tmp_path / "d"), "--clips", "0"]) == 2

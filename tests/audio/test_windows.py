"""melos.audio.windows: hand-computed window starts, and streamed windows against slices of a
whole-file `load`."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.audio import AudioError, AudioWindow, info, iter_windows, load, window_starts


@pytest.mark.parametrize(
    "duration, window, hop, expected",
    [
        (65.0, 30.0, 30.0, [0.0, 30.0, 60.0]),
        (60.0, 30.0, 30.0, [0.0, 30.0]),
        (30.0, 30.0, 30.0, [0.0]),
        (10.0, 30.0, 30.0, [0.0]),
        (70.0, 30.0, 20.0, [0.0, 20.0, 40.0]),
        (71.0, 30.0, 20.0, [0.0, 20.0, 40.0, 60.0]),
        (60.0000001, 30.0, 30.0, [0.0, 30.0]),  # 0.1 us past 60 s is round-off, not audio
        (60.001, 30.0, 30.0, [0.0, 30.0, 60.0]),  # 1 ms is 24+ samples: a real third window
        (65.0, 10.0, 40.0, [0.0, 40.0]),  # gaps: no window may start past the end
        (45.0, 10.0, 40.0, [0.0, 40.0]),
        (40.0, 10.0, 40.0, [0.0]),
    ],
)
def test_window_starts_hand_computed(duration, window, hop, expected):
    assert window_starts(duration, window, hop) == pytest.approx(expected)


def test_window_starts_absorbs_float_round_off():
    duration = 0.1 * 3  # 0.30000000000000004
    assert len(window_starts(duration, 0.1, 0.1)) == 3


@pytest.mark.parametrize("seed", range(5))
def test_window_starts_is_fewest_covering(seed):
    """Brute force on whole-ms values: stop at the first window reaching the end, or (with gaps)
    before the first window that would start at or past the end."""
    rng = np.random.default_rng(seed)
    for _ in range(200):
        duration_ms, window_ms = rng.integers(1, 100_000), rng.integers(1, 40_000)
        hop_ms = rng.integers(1, 2 * window_ms + 1)
        n = 1
        while (n - 1) * hop_ms + window_ms < duration_ms and n * hop_ms < duration_ms:
            n += 1
        starts = window_starts(duration_ms / 1000, window_ms / 1000, hop_ms / 1000)
        assert starts == pytest.approx([k * hop_ms / 1000 for k in range(n)])


@pytest.mark.parametrize("window, hop", [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -2.0)])
def test_window_starts_rejects_non_positive_sizes(window, hop):
    with pytest.raises(ValueError):
        window_starts(10.0, window, hop)


def test_window_starts_rejects_non_positive_duration():
    with pytest.raises(ValueError):
        window_starts(0.0, 1.0, 1.0)


@pytest.fixture
def stereo_file(write, noise):
    """3.3 s of stereo noise at 44100 Hz (the last window of a 1 s tiling is short)."""
    return write("stereo.wav", noise(round(3.3 * 44100), channels=2), 44100, subtype="FLOAT")


@pytest.mark.parametrize("mono", [True, False])
def test_tiling_windows_concatenate_to_whole_file_load(stereo_file, mono):
    """Exact: the streaming soxr resampler emits the same samples as one-shot soxr.resample."""
    windows = list(iter_windows(stereo_file, 24000, window=1.0, mono=mono, block_seconds=0.37))
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert [w.audio.shape[-1] for w in windows] == [24000, 24000, 24000, 7200]
    whole = load(stereo_file, 24000, mono)
    assert torch.equal(torch.cat([w.audio for w in windows], dim=-1), whole)


def test_tiling_is_exact_when_window_is_a_fractional_number_of_samples(stereo_file):
    """0.70001 s is 16800.24 samples at 24 kHz: window ends are rounded from start + window, so
    consecutive windows meet without a gap or overlap (lengths may differ by one sample)."""
    windows = list(iter_windows(stereo_file, 24000, window=0.70001, block_seconds=0.3))
    assert torch.equal(torch.cat([w.audio for w in windows]), load(stereo_file, 24000))
    assert {w.audio.shape[0] for w in windows[:-1]} == {16800, 16801}


def test_native_rate_windows_equal_file_slices(write, noise):
    audio = noise(16000 * 3 + 123)
    path = write("native.wav", audio, 16000, subtype="FLOAT")
    windows = list(iter_windows(path, 16000, window=1.0, hop=0.75, block_seconds=0.5))
    for w in windows:
        begin = round(w.start * 16000)
        assert np.array_equal(w.audio.numpy(), audio[begin : begin + 16000])


@pytest.mark.parametrize("window, hop", [(1.0, 0.4), (1.5, 0.5), (0.5, 1.2)])
def test_windows_equal_slices_of_whole_load(stereo_file, window, hop):
    full = load(stereo_file, 24000)
    windows = list(iter_windows(stereo_file, 24000, window=window, hop=hop, block_seconds=0.25))
    starts = window_starts(info(stereo_file).duration, window, hop)
    assert [w.start for w in windows] == starts
    assert [w.index for w in windows] == list(range(len(starts)))
    for w in windows:
        begin, stop = round(w.start * 24000), round((w.start + window) * 24000)
        assert torch.equal(w.audio, full[begin:stop])


def test_hop_defaults_to_window(stereo_file):
    starts = [w.start for w in iter_windows(stereo_file, 44100, window=1.5)]
    assert starts == [0.0, 1.5, 3.0]


def test_window_longer_than_file_gives_whole_file(stereo_file):
    (only,) = iter_windows(stereo_file, 16000, window=10.0, mono=False)
    assert isinstance(only, AudioWindow) and only.start == 0.0
    assert torch.equal(only.audio, load(stereo_file, 16000, mono=False))


def _count_decoded_frames(monkeypatch) -> list[int]:
    """Patch SoundFile.read to append the number of frames each call decoded."""
    decoded: list[int] = []
    original = sf.SoundFile.read

    def counting_read(self, *args, **kwargs):
        audio = original(self, *args, **kwargs)
        decoded.append(len(audio))
        return audio

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    return decoded


def test_first_window_arrives_after_window_plus_one_block(write, noise, monkeypatch):
    rate, window, block = 44100, 1.0, 0.25
    path = write("long.wav", noise(10 * rate), rate, subtype="FLOAT")
    decoded = _count_decoded_frames(monkeypatch)
    windows = iter_windows(path, 24000, window=window, block_seconds=block)
    first = next(windows)
    assert first.audio.shape == (24000,)
    assert sum(decoded) <= (window + block) * rate
    assert max(decoded) == block * rate
    rest = list(windows)
    assert len(rest) == 9 and sum(decoded) == 10 * rate  # the file is decoded once


def test_nan_in_a_later_block_raises_after_earlier_windows(write, noise):
    audio = noise(4 * 16000)
    audio[3 * 16000 + 5] = np.nan
    path = write("nan.wav", audio, 16000, subtype="FLOAT")
    windows = iter_windows(path, 16000, window=1.0, block_seconds=0.5)
    assert next(windows).index == 0
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN or infinite samples"):
        list(windows)


def test_truncated_flac_raises_audio_error(write, noise):
    path = write("cut.flac", noise(3 * 16000), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.flac: .*truncated"):
        list(iter_windows(path, 24000, window=1.0, block_seconds=0.5))


@pytest.mark.parametrize("name, content, keyword", [
    ("missing.wav", None, "file not found"),
    ("empty.wav", b"", "file is empty"),
    ("text.wav", b"not audio at all\n" * 20, "not a readable audio file"),
])
def test_unreadable_file_raises_on_first_window(tmp_path, name, content, keyword):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=rf"{name}: {keyword}"):
        next(iter_windows(path, 16000))


@pytest.mark.parametrize(
    "kwargs", [{"window": 0.0}, {"hop": -1.0}, {"block_seconds": 0.0}, {"sample_rate": 0}]
)
def test_iter_windows_rejects_bad_sizes_at_call_time(stereo_file, kwargs):
    with pytest.raises(ValueError, match="must be positive"):
        iter_windows(stereo_file, **{"sample_rate": 16000, **kwargs})


def test_sub_sample_last_window_is_dropped(write, noise):
    """3 s + 1 frame at 44100 Hz: the third 1 s window holds less than one 8 kHz sample."""
    path = write("tail.wav", noise(3 * 44100 + 1), 44100, subtype="FLOAT")
    assert len(window_starts(info(path).duration, 1.0, 1.0)) == 4
    full = load(path, 8000)
    windows = list(iter_windows(path, 8000, window=1.0))
    assert len(full) == 24000 and [w.start for w in windows] == [0.0, 1.0, 2.0]
    assert sum(w.audio.shape[0] for w in windows) == len(full)

"""melos.audio.io against references computed independently of it: the samples written with
soundfile, numpy means and slices, an FFT, and soxr called directly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from melos.audio import AUDIO_EXTENSIONS, AudioError, AudioInfo, audio_files, info, load

# Extension -> (format, subtype, sample rate, lossy) used to write a file that load must read.
ROUNDTRIP = {
    ".wav": ("WAV", "PCM_16", 44100, False),
    ".flac": ("FLAC", "PCM_16", 44100, False),
    ".aiff": ("AIFF", "PCM_16", 44100, False),
    ".aif": ("AIFF", "PCM_16", 44100, False),
    ".au": ("AU", "PCM_16", 44100, False),
    ".ogg": ("OGG", "VORBIS", 44100, True),
    ".oga": ("OGG", "VORBIS", 44100, True),
    ".opus": ("OGG", "OPUS", 48000, True),
    ".mp3": ("MP3", "MPEG_LAYER_III", 44100, True),
}
HAS_MP3 = "MP3" in sf.available_formats()


def int16_noise(n: int, channels: int = 1) -> np.ndarray:
    """Seeded int16 samples, [N] or [N, C]; their float value is exactly x / 32768."""
    shape = (n, channels) if channels > 1 else (n,)
    return np.random.default_rng(1).integers(-20000, 20000, shape, dtype=np.int16)


def test_native_rate_float_wav_is_exact(write, noise):
    audio = noise(8000)
    path = write("float.wav", audio, 8000, subtype="FLOAT")
    loaded = load(path, 8000)
    assert loaded.dtype == torch.float32 and loaded.shape == (8000,)
    assert np.array_equal(loaded.numpy(), audio)


def test_native_rate_pcm16_wav_is_int_over_32768(write):
    samples = int16_noise(8000)
    path = write("pcm.wav", samples, 8000)
    assert np.array_equal(load(path, 8000).numpy(), samples.astype(np.float32) / 32768)


def test_stereo_downmix_is_channel_mean(write, noise):
    audio = noise(8000, channels=2)
    path = write("stereo.wav", audio, 8000, subtype="FLOAT")
    expected = (audio[:, 0] + audio[:, 1]) / 2
    assert np.array_equal(load(path, 8000).numpy(), expected)


def test_mono_false_returns_channels_first(write, noise):
    audio = noise(8000, channels=3)
    path = write("three.wav", audio, 8000, subtype="FLOAT")
    loaded = load(path, 8000, mono=False)
    assert loaded.shape == (3, 8000) and loaded.is_contiguous()
    assert np.array_equal(loaded.numpy(), audio.T)


def test_mono_false_on_mono_file_keeps_channel_axis(write, noise):
    path = write("mono.wav", noise(800), 8000, subtype="FLOAT")
    assert load(path, 8000, mono=False).shape == (1, 800)


def test_resampled_sine_keeps_length_pitch_and_amplitude(write, tone):
    audio = tone(1000, 44100, 2.0)
    path = write("sine.wav", audio, 44100, subtype="FLOAT")
    loaded = load(path, 24000).numpy()
    assert abs(len(loaded) - round(len(audio) * 24000 / 44100)) <= 1
    spectrum = np.abs(np.fft.rfft(loaded * np.hanning(len(loaded))))
    peak_hz = np.fft.rfftfreq(len(loaded), 1 / 24000)[np.argmax(spectrum)]
    assert abs(peak_hz - 1000) <= 24000 / len(loaded)
    interior = slice(1000, -1000)
    assert np.max(np.abs(loaded[interior])) == pytest.approx(0.5, abs=5e-3)
    direct = soxr.resample(audio, 44100, 24000, quality="HQ")
    assert np.allclose(loaded[interior], direct[interior], rtol=0, atol=1e-5)


def test_resampled_stereo_matches_soxr_per_channel(write, tone):
    audio = tone(440, 22050, 1.0, channels=2)
    path = write("stereo.wav", audio, 22050, subtype="FLOAT")
    loaded = load(path, 16000, mono=False).numpy()
    for c in range(2):
        direct = soxr.resample(audio[:, c], 22050, 16000, quality="HQ")
        assert np.allclose(loaded[c, 100:-100], direct[100:-100], rtol=0, atol=1e-5)


def test_offset_and_duration_equal_slice_of_full_load(write, noise):
    path = write("long.wav", noise(48000), 16000, subtype="FLOAT")
    full = load(path, 16000)
    part = load(path, 16000, offset=1.25, duration=0.5)
    assert torch.equal(part, full[20000:28000])
    assert torch.equal(load(path, 16000, offset=2.5), full[40000:])


def test_span_past_the_end_is_clipped(write, noise):
    path = write("clip.wav", noise(48000), 16000, subtype="FLOAT")
    assert torch.equal(load(path, 16000, offset=2.5, duration=10.0), load(path, 16000)[40000:])


def test_offset_reads_only_the_requested_frames(write, noise, monkeypatch):
    path = write("long.wav", noise(160000), 16000, subtype="FLOAT")
    requested: list[int] = []
    original = sf.SoundFile.read

    def recording_read(self, frames=-1, *args, **kwargs):
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", recording_read)
    part = load(path, 16000, offset=7.0, duration=0.25)
    assert part.shape == (4000,)
    assert requested == [4000]


def test_info_reads_the_header(write, noise):
    path = write("info.wav", noise(12000, channels=2), 24000, subtype="FLOAT")
    meta = info(path)
    assert meta == AudioInfo(str(path), 24000, 12000, 2)
    assert meta.duration == 0.5


@pytest.mark.parametrize("ext", sorted(ROUNDTRIP))
def test_every_format_loads(write, ext):
    if ext not in AUDIO_EXTENSIONS:
        pytest.skip(f"this libsndfile build cannot read {ext}")
    fmt, subtype, rate, lossy = ROUNDTRIP[ext]
    samples = int16_noise(round(1.5 * rate))
    t = np.arange(len(samples)) / rate
    music = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t))
    source = music.astype(np.float32) if lossy else samples
    path = write(f"roundtrip{ext}", source, rate, format=fmt, subtype=subtype)
    loaded = load(path, rate).numpy()
    if not lossy:
        assert np.array_equal(loaded, samples.astype(np.float32) / 32768)
        return
    assert abs(len(loaded) - len(source)) <= 2304  # two MP3 frames of encoder padding
    n = min(len(loaded), len(source))
    assert np.corrcoef(loaded[:n], source[:n])[0, 1] > 0.99


def test_roundtrip_table_covers_every_extension():
    assert AUDIO_EXTENSIONS <= set(ROUNDTRIP)
    assert all(ext == ext.lower() and ext.startswith(".") for ext in AUDIO_EXTENSIONS)
    assert {".wav", ".flac", ".ogg"} <= AUDIO_EXTENSIONS


def test_opus_and_mp3_listed_exactly_when_readable():
    assert (".opus" in AUDIO_EXTENSIONS) == ("OPUS" in sf.available_subtypes("OGG"))
    assert (".mp3" in AUDIO_EXTENSIONS) == HAS_MP3


def test_wav_with_cut_data_chunk_is_truncated_unless_allowed(write, tmp_path):
    samples = int16_noise(16000)
    path = write("cut.wav", samples, 8000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2 * 6000])  # drop the last 6000 frames, keep the header
    for call in (info, lambda p: load(p, 8000)):
        with pytest.raises(AudioError, match="header declares 16000 frames, 10000 present"):
            call(path)
    assert info(path, allow_truncated=True).n_frames == 10000
    loaded = load(path, 8000, allow_truncated=True)
    assert np.array_equal(loaded.numpy(), samples[:10000].astype(np.float32) / 32768)


def _cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _missing(tmp_path, write, tone):
    return tmp_path / "missing.wav"


def _empty(tmp_path, write, tone):
    path = tmp_path / "empty.wav"
    path.touch()
    return path


def _directory(tmp_path, write, tone):
    path = tmp_path / "folder.wav"
    path.mkdir()
    return path


def _text(tmp_path, write, tone):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 50)
    return path


def _zero_frames(tmp_path, write, tone):
    return write("silence.wav", np.zeros(0, np.float32), 16000)


def _header_only(tmp_path, write, tone):
    path = write("header.wav", tone(440, 16000, 1.0), 16000)
    path.write_bytes(path.read_bytes()[:44])  # header promises 1 s, no data follows
    return path


def _nan(tmp_path, write, tone):
    audio = tone(440, 16000, 1.0)
    audio[12345] = np.nan
    return write("nan.wav", audio, 16000, subtype="FLOAT")


def _inf(tmp_path, write, tone):
    audio = tone(440, 16000, 1.0)
    audio[100] = np.inf
    return write("inf.wav", audio, 16000, subtype="FLOAT")


def _flac_cut(tmp_path, write, tone):
    return _cut_in_half(write("cut.flac", tone(440, 16000, 2.0), 16000))


def _flac_header_only(tmp_path, write, tone):
    path = write("header.flac", tone(440, 16000, 2.0), 16000)
    path.write_bytes(path.read_bytes()[:100])
    return path


def _ogg_cut(tmp_path, write, tone):
    return _cut_in_half(write("cut.ogg", tone(440, 16000, 2.0), 16000))


def _mp3_cut(tmp_path, write, tone):
    if not HAS_MP3:
        pytest.skip("this libsndfile build cannot write MP3")
    return _cut_in_half(write("cut.mp3", tone(440, 44100, 2.0), 44100))


BAD_FILES = [
    (_missing, "file not found"),
    (_empty, "empty"),
    (_directory, "not a regular file"),
    (_text, "not a readable audio file"),
    (_zero_frames, "no audio frames"),
    (_header_only, "file is truncated: header declares 16000 frames, 0 present"),
    (_nan, "NaN or infinite"),
    (_inf, "NaN or infinite"),
    (_flac_cut, "truncated"),
    (_flac_header_only, "truncated"),
    (_ogg_cut, ("truncated", "malformed")),  # "malformed" if the cut falls in the Vorbis headers
    (_mp3_cut, "truncated"),
]
HEADER_FAILURES = {_missing, _empty, _directory, _text, _zero_frames, _header_only, _flac_cut, _flac_header_only,
                   _ogg_cut, _mp3_cut}


def _expect_audio_error(path, keywords: str | tuple[str, ...], call):
    """call(path) raises AudioError naming the file, with one of the keywords as the cause."""
    with pytest.raises(AudioError) as caught:
        call(path)
    error = caught.value
    keywords = (keywords,) if isinstance(keywords, str) else keywords
    assert path.name in str(error) and error.reason in str(error)
    assert error.path == str(path) and any(k in error.reason for k in keywords), error.reason


@pytest.mark.parametrize("make, keyword", BAD_FILES, ids=lambda v: getattr(v, "__name__", v))
def test_load_rejects_bad_file(make, keyword, tmp_path, write, tone):
    path = make(tmp_path, write, tone)
    _expect_audio_error(path, keyword, lambda p: load(p, 16000))


@pytest.mark.parametrize("make, keyword", [(m, k) for m, k in BAD_FILES if m in HEADER_FAILURES])
def test_info_rejects_bad_header(make, keyword, tmp_path, write, tone):
    path = make(tmp_path, write, tone)
    _expect_audio_error(path, keyword, info)


@pytest.mark.parametrize(
    "offset, duration, keyword",
    [(5.0, None, "beyond the end"), (1.0, 1.0, "beyond the end"), (-0.5, None, "negative offset"),
     (0.0, -1.0, "negative duration")],
)
def test_load_rejects_bad_span(offset, duration, keyword, write, tone):
    path = write("span.wav", tone(440, 16000, 1.0), 16000)
    _expect_audio_error(path, keyword, lambda p: load(p, 16000, offset=offset, duration=duration))


def test_load_rejects_non_positive_rate(write, tone):
    path = write("rate.wav", tone(440, 16000, 0.1), 16000)
    with pytest.raises(ValueError):
        load(path, 0)


def test_audio_error_message_and_pickle():
    error = AudioError("song.ogg", "file is empty (0 bytes)")
    assert str(error) == "song.ogg: file is empty (0 bytes)"
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), str(clone), clone.path, clone.reason) == (
        AudioError, str(error), "song.ogg", "file is empty (0 bytes)"
    )


def test_audio_files_lists_audio_below_a_folder_sorted(tmp_path):
    (tmp_path / "b" / "c").mkdir(parents=True)
    for name in ("b/c/z.WAV", "a.flac", "b/song.ogg", "notes.txt", "b/cover.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "d.wav").mkdir()  # a folder with an audio extension is not a file
    assert [p.relative_to(tmp_path).as_posix() for p in audio_files(tmp_path)] == ["a.flac", "b/c/z.WAV", "b/song.ogg"]

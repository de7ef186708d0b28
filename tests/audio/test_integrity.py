"""Truncated files: real files written by soundfile, then cut as a partial download leaves them.

A cut keeps the first bytes of a complete file. References are independent of melos: the
samples written, soundfile's decode of the complete file, and Ogg pages walked from the start.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from melos.audio import AudioError, info, iter_windows, load
from melos.audio.integrity import find_truncation

RATE = 16000
HAS_OPUS = "OPUS" in sf.available_subtypes("OGG")
HAS_MP3 = "MP3" in sf.available_formats()

# name -> (extension, soundfile keywords, words the reason of a cut file holds)
FORMATS = {
    "wav": (".wav", {"format": "WAV", "subtype": "PCM_16"}, "header declares"),
    "wavex": (".wav", {"format": "WAVEX", "subtype": "PCM_24"}, "header declares"),
    "rf64": (".wav", {"format": "RF64", "subtype": "FLOAT"}, "header declares"),
    "aiff": (".aiff", {"format": "AIFF", "subtype": "PCM_16"}, "header declares"),
    "au": (".au", {"format": "AU", "subtype": "PCM_16"}, "header declares"),
    "flac": (".flac", {"format": "FLAC", "subtype": "PCM_16"}, "header declares"),
    "vorbis": (".ogg", {"format": "OGG", "subtype": "VORBIS"}, "last Ogg page"),
    "opus": (".opus", {"format": "OGG", "subtype": "OPUS"}, "last Ogg page"),
    "mp3": (".mp3", {"format": "MP3", "subtype": "MPEG_LAYER_III"}, "Xing/Info header declares"),
}
LOSSY = {"vorbis", "opus", "mp3"}


def samples(seconds: float, channels: int = 1) -> np.ndarray:
    """Seeded int16 noise, [N] or [N, C]: exact in every PCM subtype, and it compresses badly, so
    even a few seconds spread over many Ogg pages and FLAC frames."""
    n = round(seconds * RATE)
    shape = (n, channels) if channels > 1 else (n,)
    return np.random.default_rng(7).integers(-20000, 20000, shape, dtype=np.int16)


def complete(tmp_path: Path, name: str, seconds: float = 4.0, channels: int = 1) -> tuple[Path, np.ndarray]:
    """A complete file of format `name` and the samples written to it."""
    if name == "opus" and not HAS_OPUS:
        pytest.skip("this libsndfile build cannot write Opus")
    if name == "mp3" and not HAS_MP3:
        pytest.skip("this libsndfile build cannot write MP3")
    ext, kwargs, _ = FORMATS[name]
    audio = samples(seconds, channels)
    path = tmp_path / f"{name}-{channels}ch{ext}"
    sf.write(path, audio, RATE, **kwargs)
    return path, audio


def cut(path: Path, keep: float | int) -> Path:
    """A copy of `path` with its first `keep` bytes (a fraction, or a count; negative: all but)."""
    data = path.read_bytes()
    n = round(keep * len(data)) if isinstance(keep, float) else keep % len(data)
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[:n])
    return out


def decoded(path: Path) -> np.ndarray:
    """soundfile's float32 decode of a complete file, [N] or [N, C]."""
    return sf.read(path, dtype="float32")[0]


def ogg_pages(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, size, header type) of each page, walked from the start of the stream."""
    pages, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS"
        n_segments = data[pos + 26]
        size = 27 + n_segments + sum(data[pos + 27 : pos + 27 + n_segments])
        pages.append((pos, size, data[pos + 5]))
        pos += size
    return pages


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("seconds, channels", [(0.02, 1), (4.0, 2)], ids=["20ms-mono", "4s-stereo"])
def test_complete_files_pass(tmp_path, name, seconds, channels):
    path, audio = complete(tmp_path, name, seconds, channels)
    header = sf.info(path)
    assert find_truncation(path, header.format, header.frames, header.samplerate) is None
    assert info(path).n_frames == header.frames
    assert load(path, RATE, mono=False).shape == (channels, header.frames)
    if name not in LOSSY:
        assert header.frames == len(audio)


@pytest.mark.parametrize("name", ["vorbis", "opus"])
def test_ogg_ending_in_an_end_of_stream_page_passes(tmp_path, name):
    path, _ = complete(tmp_path, name)
    data = path.read_bytes()
    pages = ogg_pages(data)
    offset, size, header_type = pages[-1]
    assert len(pages) >= 5 and offset + size == len(data) and header_type & 0x04
    assert info(path).n_frames == sf.info(path).frames


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("keep", [0.5, 0.97, -1], ids=["half", "97%", "all-but-1-byte"])
def test_cut_file_raises_naming_the_file_and_the_cause(tmp_path, name, keep):
    path = cut(complete(tmp_path, name)[0], keep)
    cause = FORMATS[name][2]
    calls = {"info": info, "load": lambda p: load(p, RATE), "iter_windows": lambda p: list(iter_windows(p, RATE))}
    for call in calls.values():
        with pytest.raises(AudioError) as caught:
            call(path)
        error = caught.value
        assert error.path == str(path) and str(path) in str(error)
        assert error.reason.startswith("file is truncated") and cause in error.reason, error.reason


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_allow_truncated_reads_what_decodes_with_one_warning(tmp_path, name, caplog):
    full, _ = complete(tmp_path, name)
    path = cut(full, 0.6)
    with caplog.at_level(logging.WARNING, logger="melos.audio.io"):
        n_frames = info(path, allow_truncated=True).n_frames
        audio = load(path, RATE, mono=False, allow_truncated=True).numpy()
        windows = [w.audio for w in iter_windows(path, RATE, window=0.5, mono=False, allow_truncated=True)]
    reference = decoded(full)[:, None]
    assert 0 < audio.shape[1] < len(reference)
    prefix = reference[: audio.shape[1], 0]  # the part of the complete file that decodes
    assert np.array_equal(audio[0], prefix) if name != "mp3" else np.allclose(audio[0], prefix, atol=1e-6)
    assert np.array_equal(np.concatenate(windows, axis=1), audio)
    if name == "mp3":  # estimated from the bytes present
        assert abs(n_frames - audio.shape[1]) < 0.1 * audio.shape[1]
    else:
        assert n_frames == audio.shape[1]
    (record,) = [r for r in caplog.records if str(path) in r.getMessage()]
    assert record.levelno == logging.WARNING and "file is truncated" in record.getMessage()


def test_issue_17_ogg_cut_after_20000_bytes_is_not_a_short_complete_file(tmp_path):
    path = tmp_path / "song.ogg"
    sf.write(path, samples(10.0) // 4, 44100, format="OGG", subtype="VORBIS")
    path = cut(path, 20000)
    assert 0 < sf.info(path).duration < 10.0  # libsndfile alone takes it for a short, whole song
    with pytest.raises(AudioError, match="last Ogg page is cut short"):
        info(path)


def test_ogg_cut_at_a_page_boundary_has_no_end_of_stream_flag(tmp_path):
    full, _ = complete(tmp_path, "vorbis")
    offset, _, _ = ogg_pages(full.read_bytes())[-1]
    path = cut(full, offset)  # every page present is whole; the last one is missing
    with pytest.raises(AudioError, match="last Ogg page has no end-of-stream flag"):
        info(path)


def test_ogg_cut_inside_a_page_header(tmp_path):
    full, _ = complete(tmp_path, "vorbis")
    offset, _, _ = ogg_pages(full.read_bytes())[-1]
    with pytest.raises(AudioError, match="last Ogg page is cut short .*its header"):
        info(cut(full, offset + 12))


def test_flac_cut_inside_its_last_frame_counts_the_frames_before_it(tmp_path):
    full, audio = complete(tmp_path, "flac")
    data = full.read_bytes()
    block_size = int.from_bytes(data[10:12], "big")  # STREAMINFO: maximum block size
    last_frame_start = (len(audio) - 1) // block_size * block_size
    with pytest.raises(AudioError, match=f"declares {len(audio)} frames, {last_frame_start} present"):
        info(cut(full, -10))


def test_tags_after_the_audio_are_not_truncation(tmp_path):
    flac, _ = complete(tmp_path, "flac")
    wav = tmp_path / "titled.wav"
    with sf.SoundFile(wav, "w", RATE, 1, "PCM_16") as f:
        f.title = "a LIST chunk"
        f.write(samples(0.5))
    flac.write_bytes(flac.read_bytes() + b"TAG" + bytes(125))  # an ID3v1 tag, as some taggers append
    for path in (flac, wav):
        header = sf.info(path)
        assert find_truncation(path, header.format, header.frames, header.samplerate) is None


def test_wav_of_unknown_length_is_not_truncation(tmp_path):
    path = tmp_path / "streamed.wav"
    sf.write(path, samples(0.5), RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = data[40:44] = b"\xff\xff\xff\xff"  # RIFF and data sizes of a writer that could not seek
    path.write_bytes(bytes(data))
    assert info(path).n_frames == RATE // 2


@pytest.mark.skipif(not HAS_MP3, reason="this libsndfile build cannot write MP3")
def test_mpeg1_stereo_mp3_between_id3_tags(tmp_path):
    full = tmp_path / "song.mp3"
    sf.write(full, samples(1.0, channels=2), 44100, format="MP3")  # MPEG-1: its Xing tag sits elsewhere
    id3v2 = b"ID3\x04\x00\x00\x00\x00\x00\x14" + bytes(20)
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(id3v2 + full.read_bytes() + b"TAG" + bytes(125))
    assert info(tagged).n_frames == sf.info(full).frames
    with pytest.raises(AudioError, match="Xing/Info header declares"):
        info(cut(tagged, 0.7))


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "AU", "FLAC"])
def test_every_subtype_soundfile_writes_passes_whole_and_fails_cut(tmp_path, fmt):
    for subtype in sf.available_subtypes(fmt):
        path = tmp_path / f"{subtype}.{fmt.lower()}"
        try:
            sf.write(path, samples(0.2), RATE, format=fmt, subtype=subtype)
        except (sf.LibsndfileError, ValueError):  # listed but not writable in this build
            continue
        assert info(path).n_frames == sf.info(path).frames, subtype
        with pytest.raises(AudioError, match="file is truncated"):
            info(cut(path, 0.6))


def test_au_data_size_is_checked(tmp_path):
    path = tmp_path / "tone.au"
    sf.write(path, samples(0.5), RATE, format="AU", subtype="PCM_16")
    size = struct.unpack(">I", path.read_bytes()[8:12])[0]
    assert size == RATE  # 0.5 s of 16-bit mono
    with pytest.raises(AudioError, match=f"declares {RATE // 2} frames, {RATE // 4} present"):
        info(cut(path, 24 + RATE // 2))

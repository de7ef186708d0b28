"""Vorbis comment rewriting: the CRC, tags read back, and audio that decodes unchanged."""

import struct

import numpy as np
import pytest
import soundfile as sf

from melos.sense.export.ogg import _pages, ogg_crc, read_ogg_tags, set_vorbis_tags


def _reference_crc(data: bytes) -> int:
    """Bitwise CRC-32, polynomial 0x04C11DB7, initial 0, no reflection, no final xor."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _page_crcs(data: bytes) -> list[tuple[int, int]]:
    """(stored, recomputed) CRC of every page."""
    out, pos = [], 0
    for page in _pages(data, "test"):
        raw = data[pos:pos + 27 + len(page.lacing) + len(page.body)]
        pos += len(raw)
        out.append((struct.unpack("<I", raw[22:26])[0], ogg_crc(raw[:22] + bytes(4) + raw[26:])))
    return out


@pytest.fixture
def ogg(tmp_path):
    t = np.arange(16000) / 16000
    audio = np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 170 * t)], axis=1)
    path = tmp_path / "a.ogg"
    with sf.SoundFile(path, "w", 16000, 2, format="OGG", subtype="VORBIS") as f:
        f.comment = "hello"
        f.write(audio)
    return path


def test_crc_matches_the_check_value_and_a_bitwise_reference():
    assert ogg_crc(b"123456789") == 0x89A1897F
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 300):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert ogg_crc(data) == _reference_crc(data)


def test_crc_matches_what_libogg_wrote(ogg):
    assert all(stored == computed for stored, computed in _page_crcs(ogg.read_bytes()))


def test_tags_are_added_and_replaced_and_audio_decodes_unchanged(ogg):
    before, _ = sf.read(ogg)
    assert read_ogg_tags(ogg)["COMMENT"] == "hello"
    set_vorbis_tags(ogg, {"ANDROID_HAPTIC": "1", "comment": "replaced"})
    tags = read_ogg_tags(ogg)
    assert tags["ANDROID_HAPTIC"] == "1" and tags["COMMENT"] == "replaced" and "ENCODER" in tags
    after, _ = sf.read(ogg)
    np.testing.assert_array_equal(before, after)
    with sf.SoundFile(ogg) as f:
        assert f.comment == "replaced"  # libsndfile reads the rewritten header too


def test_a_comment_spanning_pages_renumbers_and_rechecksums_every_page(ogg):
    before, _ = sf.read(ogg)
    pages_before = len(list(_pages(ogg.read_bytes(), "x")))
    set_vorbis_tags(ogg, {"BIG": "x" * 70000})  # more than one page (255 * 255 bytes) of comment
    data = ogg.read_bytes()
    pages = list(_pages(data, "x"))
    assert len(pages) > pages_before
    assert [p.sequence for p in pages] == list(range(len(pages)))
    assert all(stored == computed for stored, computed in _page_crcs(data))
    assert read_ogg_tags(ogg)["BIG"] == "x" * 70000
    np.testing.assert_array_equal(sf.read(ogg)[0], before)  # a page with a bad CRC would be dropped


def test_malformed_files_and_keys_raise_value_errors(ogg, tmp_path):
    with pytest.raises(ValueError, match="must be ASCII"):
        set_vorbis_tags(ogg, {"A=B": "1"})
    text = tmp_path / "x.ogg"
    text.write_text("not an ogg file at all, but long enough")
    with pytest.raises(ValueError, match="no Ogg page"):
        read_ogg_tags(text)
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(ogg.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated"):
        read_ogg_tags(cut)

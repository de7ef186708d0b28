"""Tell a complete audio file from one cut short (a partial download, a full disk).

libsndfile reads most truncated files as shorter, complete ones: it sizes a WAV, AIFF or AU data
chunk from the bytes present and an Ogg stream from its last whole page. `find_truncation`
compares what the container declares with what the file holds, reading the header and a few KB
from the end, never decoding:

    container   declared                             present
    WAV, RF64   data chunk size (RF64: ds64 chunk)   bytes after the data chunk header
    AIFF        SSND chunk size                      bytes after the SSND header
    AU          data size                            bytes after the header
    FLAC        STREAMINFO total samples             end of the last frame (CRC-checked)
    Ogg         the last page is whole and flagged end-of-stream
    MP3         Xing/Info header's stream bytes      bytes from that frame to the end (less ID3v1)

An Ogg granule position is not compared with the length: libsndfile takes the length from the
granule of the last whole page, so the two agree on a cut file too. Not detected here: an MP3
without a Xing/Info header (libsndfile estimates its length from the file size); decoding it
comes up short, which `melos.audio.io.load` reports as truncation.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

# The largest Ogg page: 27-byte header, 255 lacing values, 255 segments of 255 bytes.
_MAX_OGG_PAGE = 27 + 255 + 255 * 255
# Bytes read from the end of an Ogg file first; pages are usually 4-8 KB.
_OGG_TAIL = 16384
# Bytes read from the end of a FLAC file when STREAMINFO does not give the largest frame size.
_FLAC_TAIL = 65536


@dataclass(frozen=True)
class Truncation:
    """Why a file counts as cut short.

    Attributes:
        reason: The cause in words, e.g. "file is truncated: header declares 240000 frames,
            52000 present".
        n_frames: Frames present at the file's rate, exact or estimated (MP3); None if unknown.
    """

    reason: str
    n_frames: int | None = None


def find_truncation(
    path: str | os.PathLike, major_format: str, n_frames: int, sample_rate: int
) -> Truncation | None:
    """Check that the file at `path` holds all the audio its container declares.

    Args:
        path: A file libsndfile opened.
        major_format: libsndfile's format of it ("WAV", "FLAC", "OGG", "MP3", ...).
        n_frames: Frames libsndfile reports.
        sample_rate: libsndfile's sample rate of it in Hz.

    Returns:
        None if the file is complete or its format gives no way to tell; else the Truncation.

    Raises:
        OSError: The file cannot be read.
    """
    check = _CHECKS.get(major_format)
    if check is None:
        return None
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            return check(fh, size, n_frames, sample_rate)
        except (struct.error, ValueError, IndexError):
            # A header this module cannot parse is libsndfile's to judge: report only what the
            # container proves.
            return None


def _read_at(fh: BinaryIO, offset: int, n: int) -> bytes:
    """Up to `n` bytes from `offset` on (fewer at the end of the file)."""
    fh.seek(offset)
    return fh.read(n)


def _shortfall(
    what: str, declared_bytes: int, present_bytes: int, frame_bytes: int | None
) -> Truncation | None:
    """Truncation if fewer bytes are present than declared (whole frames, if they have one size)."""
    if present_bytes >= declared_bytes:
        return None
    if not frame_bytes:
        reason = f"file is truncated: {what} declares {declared_bytes} bytes, {present_bytes} present"
        return Truncation(reason)
    declared, present = declared_bytes // frame_bytes, max(0, present_bytes) // frame_bytes
    if present >= declared:
        return None
    return Truncation(f"file is truncated: header declares {declared} frames, {present} present", present)


# WAV format tags whose frames all have the block-align size: PCM, IEEE float, A-law, mu-law.
_WAV_FIXED_FRAME_TAGS = {0x0001, 0x0003, 0x0006, 0x0007}
_WAV_EXTENSIBLE = 0xFFFE
# A streaming writer that cannot seek back leaves these in the data chunk size: length unknown.
_WAV_UNKNOWN_SIZES = {0, 0xFFFFFFFF}


def _wav(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """RIFF/RIFX/RF64 WAVE: the data chunk's declared size against the bytes after its header."""
    head = _read_at(fh, 0, 12)
    if head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        return None
    endian = ">" if head[:4] == b"RIFX" else "<"
    frame_bytes, ds64_data_size, pos = None, None, 12
    while pos + 8 <= size:
        chunk_id, chunk_size = struct.unpack(endian + "4sI", _read_at(fh, pos, 8))
        if chunk_id == b"ds64":
            ds64_data_size = struct.unpack("<Q", _read_at(fh, pos + 16, 8))[0]
        elif chunk_id == b"fmt ":
            fmt = _read_at(fh, pos + 8, min(chunk_size, 40))
            tag, _, _, _, block_align = struct.unpack(endian + "HHIIH", fmt[:14])
            if tag == _WAV_EXTENSIBLE and len(fmt) >= 26:
                tag = struct.unpack(endian + "H", fmt[24:26])[0]  # first bytes of the SubFormat GUID
            frame_bytes = block_align if tag in _WAV_FIXED_FRAME_TAGS else None
        elif chunk_id == b"data":
            if head[:4] == b"RF64" and chunk_size == 0xFFFFFFFF and ds64_data_size is not None:
                chunk_size = ds64_data_size
            elif chunk_size in _WAV_UNKNOWN_SIZES:
                return None
            return _shortfall("data chunk", chunk_size, size - pos - 8, frame_bytes)
        pos += 8 + chunk_size + (chunk_size & 1)
    return None


# AIFC compression types whose frames all have one size (PCM, float, A-law, mu-law).
_AIFC_FIXED_FRAME_TYPES = {
    b"NONE", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"42ni", b"23ni",
    b"fl32", b"FL32", b"fl64", b"FL64", b"ulaw", b"ULAW", b"alaw", b"ALAW",
}


def _aiff(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """AIFF/AIFC: the SSND chunk's declared size against the bytes after its header."""
    head = _read_at(fh, 0, 12)
    if head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return None
    declared_frames, ssnd, pos = None, None, 12
    while pos + 8 <= size:
        chunk_id, chunk_size = struct.unpack(">4sI", _read_at(fh, pos, 8))
        if chunk_id == b"COMM":
            comm = _read_at(fh, pos + 8, 22)  # channels, frames, bits, 10-byte rate, AIFC type
            compression = comm[18:22] if head[8:12] == b"AIFC" else b"NONE"
            if compression in _AIFC_FIXED_FRAME_TYPES:  # else COMM counts packets, not frames
                declared_frames = struct.unpack(">hI", comm[:6])[1]
        elif chunk_id == b"SSND":
            offset = struct.unpack(">I", _read_at(fh, pos + 8, 4))[0]
            # The chunk size counts the offset and block-size fields (8 bytes) and the offset.
            ssnd = (chunk_size - 8 - offset, size - (pos + 16 + offset))
        pos += 8 + chunk_size + (chunk_size & 1)
    if ssnd is None:
        return None
    declared_bytes, present_bytes = ssnd
    frame_bytes = None
    if declared_frames and declared_bytes > 0 and declared_bytes % declared_frames == 0:
        frame_bytes = declared_bytes // declared_frames  # exact for PCM, float and A-/mu-law
    return _shortfall("SSND chunk", declared_bytes, present_bytes, frame_bytes)


# AU encodings -> bytes per sample (mu-law, 8/16/24/32-bit PCM, float, double, A-law).
_AU_SAMPLE_BYTES = {1: 1, 2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 8, 27: 1}


def _au(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """Sun/NeXT AU: the header's data size against the bytes after the header."""
    magic, offset, data_size, encoding, _, channels = struct.unpack(">4sIIIII", _read_at(fh, 0, 24))
    if magic != b".snd" or data_size == 0xFFFFFFFF:  # 0xFFFFFFFF: size unknown when written
        return None
    sample_bytes = _AU_SAMPLE_BYTES.get(encoding)
    return _shortfall("header", data_size, size - offset, sample_bytes and sample_bytes * channels)


def _id3v2_end(fh: BinaryIO) -> int:
    """Offset of the first byte after any ID3v2 tags at the start of the file."""
    pos = 0
    while True:
        head = _read_at(fh, pos, 10)
        if len(head) < 10 or head[:3] != b"ID3":
            return pos
        body = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        pos += 10 + body + (10 if head[5] & 0x10 else 0)  # flag 0x10: a 10-byte footer follows


def _crc_table(poly: int, width: int) -> list[int]:
    """Table of a most-significant-bit-first CRC of `width` bits, one entry per byte value."""
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return table


_CRC8 = _crc_table(0x07, 8)  # FLAC frame header
_CRC16 = _crc_table(0x8005, 16)  # FLAC whole frame


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


@dataclass(frozen=True)
class _StreamInfo:
    """The FLAC STREAMINFO fields a frame header is checked against."""

    max_block_size: int
    max_frame_size: int
    sample_rate: int
    n_channels: int
    bits_per_sample: int
    n_samples: int


def _flac(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """FLAC: STREAMINFO's total samples against the end of the last frame in the file."""
    pos = _id3v2_end(fh)
    if _read_at(fh, pos, 4) != b"fLaC":
        return None
    pos += 4
    info = None
    while True:  # metadata blocks: 1 bit "last", 7 bits type, 24 bits length
        head = _read_at(fh, pos, 4)
        if len(head) < 4:
            return Truncation("file is truncated: it ends inside the FLAC metadata", 0)
        if head[0] & 0x7F == 0:
            info = _stream_info(_read_at(fh, pos + 4, 34))
        pos += 4 + int.from_bytes(head[1:4], "big")
        if head[0] & 0x80:
            break
    if info is None or info.n_samples == 0:  # 0 samples: the encoder did not know the length
        return None
    if pos > size:
        return Truncation("file is truncated: it ends inside the FLAC metadata", 0)
    tail_bytes = max(_FLAC_TAIL, 2 * info.max_frame_size + 64)
    start = max(pos, size - tail_bytes)
    tail = _read_at(fh, start, size - start)
    frame = _last_flac_frame(tail, info)
    if frame is None:
        if start > pos:  # the last frame header lies before the bytes read: cannot tell
            return None
        return Truncation(f"file is truncated: header declares {info.n_samples} frames, 0 present", 0)
    offset, first, block_size = frame
    end = first + block_size
    if end >= info.n_samples and _frame_closes(tail[offset:]):
        return None
    present = end if end < info.n_samples and _frame_closes(tail[offset:], at_end=True) else first
    reason = f"file is truncated: header declares {info.n_samples} frames, {present} present"
    return Truncation(reason, present)


def _frame_closes(frame: bytes, at_end: bool = False) -> bool:
    """Whether `frame`, the bytes from a FLAC frame header on, holds the whole frame: whether a
    prefix of it (with `at_end`, all of it) ends in the CRC-16 of the bytes before.

    The CRC of data followed by its own CRC is 0, so one pass tries every prefix. Any prefix
    will do for the last frame of a file, as a tag appended later (ID3v1) may follow it.
    """
    if at_end:
        return len(frame) > 2 and _crc16(frame) == 0
    crc = 0
    for k, byte in enumerate(frame):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
        if crc == 0 and k >= 6:  # past the shortest frame header
            return True
    return False


def _stream_info(block: bytes) -> _StreamInfo:
    """Parse the 34-byte STREAMINFO block."""
    _, max_block, _, max_frame = struct.unpack(">HH3s3s", block[:10])
    bits = int.from_bytes(block[10:18], "big")
    return _StreamInfo(
        max_block_size=max_block,
        max_frame_size=int.from_bytes(max_frame, "big"),
        sample_rate=bits >> 44,
        n_channels=((bits >> 41) & 0x7) + 1,
        bits_per_sample=((bits >> 36) & 0x1F) + 1,
        n_samples=bits & ((1 << 36) - 1),
    )


def _last_flac_frame(data: bytes, info: _StreamInfo) -> tuple[int, int, int] | None:
    """(offset, first sample, block size) of the last valid frame header in `data`, or None."""
    end = len(data)
    while True:
        i = max(data.rfind(b"\xff\xf8", 0, end), data.rfind(b"\xff\xf9", 0, end))
        if i < 0:
            return None
        try:
            frame = _flac_frame_header(data, i, info)
        except IndexError:  # a candidate too close to the end to hold a whole header
            frame = None
        if frame is not None:
            return (i, *frame)
        end = i + 1


# FLAC frame header codes -> values (None: read from the end of the header, or reserved).
_FLAC_RATES = (None, 88200, 176400, 192000, 8000, 16000, 22050, 24000, 32000, 44100, 48000, 96000)
_FLAC_SAMPLE_BITS = (None, 8, 12, None, 16, 20, 24, 32)


def _flac_frame_header(data: bytes, i: int, info: _StreamInfo) -> tuple[int, int] | None:
    """(first sample, block size) of the frame header at data[i], if it is one.

    Sync codes also occur inside compressed audio, so a header counts only if its CRC-8 holds
    and every field agrees with STREAMINFO.
    """
    if i + 6 > len(data):
        return None
    variable = data[i + 1] & 1
    block_code, rate_code = data[i + 2] >> 4, data[i + 2] & 0xF
    channel_code, bits_code, reserved = data[i + 3] >> 4, (data[i + 3] >> 1) & 0x7, data[i + 3] & 1
    if block_code == 0 or rate_code == 15 or channel_code > 10 or bits_code == 3 or reserved:
        return None
    if (channel_code + 1 if channel_code < 8 else 2) != info.n_channels:
        return None
    if bits_code and _FLAC_SAMPLE_BITS[bits_code] != info.bits_per_sample:
        return None
    number, j = _utf8_number(data, i + 4, 7 if variable else 6)
    if number is None:
        return None
    if block_code == 6:
        block_size, j = data[j] + 1, j + 1
    elif block_code == 7:
        block_size, j = int.from_bytes(data[j : j + 2], "big") + 1, j + 2
    elif block_code == 1:
        block_size = 192
    else:
        block_size = 576 << (block_code - 2) if block_code < 6 else 256 << (block_code - 8)
    if rate_code == 12:
        rate, j = data[j] * 1000, j + 1
    elif rate_code in (13, 14):
        rate, j = int.from_bytes(data[j : j + 2], "big") * (1 if rate_code == 13 else 10), j + 2
    else:
        rate = _FLAC_RATES[rate_code] if rate_code < len(_FLAC_RATES) else None
    if rate is not None and rate != info.sample_rate:
        return None
    if j >= len(data) or _crc8(data[i:j]) != data[j]:
        return None
    first = number if variable else number * info.max_block_size
    if first >= info.n_samples or (info.max_block_size >= 16 and block_size > info.max_block_size):
        return None
    return first, block_size


def _utf8_number(data: bytes, i: int, max_bytes: int) -> tuple[int | None, int]:
    """Decode FLAC's UTF-8-style coded frame or sample number at data[i]; (value, next offset)."""
    if i >= len(data):
        return None, i
    lead = data[i]
    if lead < 0x80:
        return lead, i + 1
    n = 8 - (~lead & 0xFF).bit_length()  # count of leading one bits = bytes in the sequence
    if n < 2 or n > max_bytes or i + n > len(data):
        return None, i
    value = lead & (0x7F >> n)
    for byte in data[i + 1 : i + n]:
        if byte & 0xC0 != 0x80:
            return None, i
        value = value << 6 | byte & 0x3F
    return value, i + n


def _ogg(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """Ogg (Vorbis, Opus, ...): the last page must be whole and carry the end-of-stream flag."""
    page = None
    for tail_bytes in (_OGG_TAIL, 2 * _MAX_OGG_PAGE):  # a page is at most 65307 bytes
        start = max(0, size - tail_bytes)
        page = _last_ogg_page(_read_at(fh, start, size - start))
        if page is not None or start == 0:
            break
    if page is None:
        return None
    header_type, page_bytes, available = page
    if page_bytes is None or available < page_bytes:
        whole = "its header" if page_bytes is None else f"{page_bytes} bytes"
        reason = f"last Ogg page is cut short ({available} bytes of {whole}; partial download?)"
        return Truncation("file is truncated: " + reason, n_frames)
    if not header_type & 0x04:
        reason = "last Ogg page has no end-of-stream flag (partial download?)"
        return Truncation("file is truncated: " + reason, n_frames)
    return None


def _last_ogg_page(data: bytes) -> tuple[int, int | None, int] | None:
    """(header type, page size or None if its header is cut, bytes present) of the last Ogg page
    starting in `data`.

    A page starts with "OggS", stream structure version 0 and only the three defined flags
    (continued, beginning and end of stream), then 21 more header bytes and its segment table.
    """
    end = len(data)
    while (i := data.rfind(b"OggS", 0, end)) >= 0:
        end = i + 3
        available = len(data) - i
        if available < 6:
            return 0, None, available  # cut inside the header, before its flags
        if data[i + 4] != 0 or data[i + 5] & 0xF8:
            continue
        if available < 27 or available < 27 + data[i + 26]:
            return data[i + 5], None, available
        n_segments = data[i + 26]
        return data[i + 5], 27 + n_segments + sum(data[i + 27 : i + 27 + n_segments]), available
    return None


# MPEG audio: bytes from the frame header to a Xing/Info tag, by (MPEG-1?, mono?).
_XING_OFFSETS = {(True, False): 36, (True, True): 21, (False, False): 21, (False, True): 13}


def _mp3(fh: BinaryIO, size: int, n_frames: int, sample_rate: int) -> Truncation | None:
    """MP3 with a Xing/Info header: its declared stream bytes against the bytes present."""
    start = _id3v2_end(fh)
    head = _read_at(fh, start, 4096)
    frame = _first_mpeg_frame(head)
    if frame is None:
        return None
    offset, mpeg1, mono = frame
    tag = offset + _XING_OFFSETS[(mpeg1, mono)]
    if head[tag : tag + 4] not in (b"Xing", b"Info"):
        return None
    flags = struct.unpack(">I", head[tag + 4 : tag + 8])[0]
    if not flags & 0x2:  # no stream-size field
        return None
    declared = struct.unpack(">I", head[tag + 8 + (4 if flags & 0x1 else 0) :][:4])[0]
    if declared == 0:
        return None
    end = size - (128 if size >= 128 and _read_at(fh, size - 128, 3) == b"TAG" else 0)  # ID3v1 tag
    # The declared size counts from the Xing/Info frame on, plus the ID3v2 tag if the encoder
    # wrote that tag itself (LAME does); a tag added later is not counted. Either fits.
    present = max(0, end - (start + offset))
    if present >= declared or end >= declared:
        return None
    reason = f"file is truncated: Xing/Info header declares {declared} bytes of MPEG audio, {present} present"
    return Truncation(reason, n_frames * present // declared)


def _first_mpeg_frame(data: bytes) -> tuple[int, bool, bool] | None:
    """(offset, MPEG-1?, mono?) of the first MPEG audio frame header in `data`."""
    i = data.find(b"\xff")
    while 0 <= i and i + 4 <= len(data):
        b1, b2, b3 = data[i + 1], data[i + 2], data[i + 3]
        version, layer = (b1 >> 3) & 0x3, (b1 >> 1) & 0x3
        if b1 & 0xE0 == 0xE0 and version != 1 and layer != 0 and b2 >> 4 != 15 and (b2 >> 2) & 0x3 != 3:
            return i, version == 3, b3 >> 6 == 3
        i = data.find(b"\xff", i + 1)
    return None


_CHECKS = {
    "WAV": _wav,
    "WAVEX": _wav,
    "RF64": _wav,
    "AIFF": _aiff,
    "AU": _au,
    "FLAC": _flac,
    "OGG": _ogg,
    "MP3": _mp3,
}

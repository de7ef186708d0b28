"""Vorbis comments of an Ogg Vorbis file: read them, and add free-form tags.

libsndfile (hence soundfile) writes only its fixed tags (TITLE, COMMENT, ...), not a free-form
one such as Android's `ANDROID_HAPTIC=<n>`, so this module rewrites the comment header itself
(standard library only; mutagen would do it but is GPL). The layout (RFC 3533; Vorbis I spec, 4.2
and 5):

    page     "OggS" | version | flags | granule i64 | serial u32 | sequence u32 | crc u32
             | n_segments u8 | lacing values [n_segments] | body (sum of the lacing values)
    packet   lacing values of 255 continue it, the first one below 255 ends it; may cross pages
    headers  identification (alone on page 0), comment, setup; audio starts on a fresh page
    comment  0x03 "vorbis" | vendor (u32 length + UTF-8) | n (u32) | n x (u32 length + "KEY=value")
             | framing byte 0x01

All integers are little-endian. A rewrite replaces the header pages after page 0 and renumbers
and re-checksums every later page, so the file stays valid however long the new comment is.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

_PAGE_HEADER = struct.Struct("<4sBBqIIIB")  # capture, version, flags, granule, serial, sequence, crc, n_segments
_CONTINUED = 0x01  # page flag: the first packet on the page continues one from the previous page
_COMMENT_MAGIC = b"\x03vorbis"
_REVERSED_BYTES = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04C11DB7, initial value 0, no reflection, no final xor.

    Computed with zlib at C speed: zlib's crc32 is the bit-reflected CRC of the same polynomial
    with initial value and final xor 0xFFFFFFFF. Reflecting the input bytes and the result undoes
    the reflection, and xoring with zlib's CRC of as many zero bytes cancels the initial value and
    final xor (a CRC is affine in its input)."""
    reflected = zlib.crc32(data.translate(_REVERSED_BYTES)) ^ zlib.crc32(bytes(len(data)))
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass
class _Page:
    flags: int
    granule: int
    serial: int
    sequence: int
    lacing: bytes
    body: bytes

    def to_bytes(self) -> bytes:
        header = _PAGE_HEADER.pack(b"OggS", 0, self.flags, self.granule, self.serial, self.sequence, 0,
                                   len(self.lacing))
        page = header + self.lacing + self.body
        return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def _pages(data: bytes, name: str) -> Iterator[_Page]:
    """Yield the pages of an Ogg stream in order; ValueError on a malformed or truncated page."""
    pos = 0
    while pos < len(data):
        if len(data) - pos < _PAGE_HEADER.size:
            raise ValueError(f"{name}: truncated Ogg page header at byte {pos}")
        capture, version, flags, granule, serial, sequence, crc, n = _PAGE_HEADER.unpack_from(data, pos)
        if capture != b"OggS" or version != 0:
            raise ValueError(f"{name}: no Ogg page at byte {pos}")
        lacing = data[pos + 27:pos + 27 + n]
        end = pos + 27 + n + sum(lacing)
        if len(lacing) < n or end > len(data):
            raise ValueError(f"{name}: truncated Ogg page at byte {pos}")
        yield _Page(flags, granule, serial, sequence, lacing, data[pos + 27 + n:end])
        pos = end


def _header_packets(pages: Iterable[_Page], name: str, count: int, whole_pages: bool = False) -> tuple[list[bytes], int]:
    """The first `count` packets and how many pages hold them (with `whole_pages`, the last one
    must end its page, as it must for the pages to be replaced)."""
    packets, current = [], b""
    for index, page in enumerate(pages):
        pos = 0
        for i, size in enumerate(page.lacing):
            current += page.body[pos:pos + size]
            pos += size
            if size < 255:
                packets.append(current)
                current = b""
                if len(packets) == count:
                    if whole_pages and i != len(page.lacing) - 1:
                        raise ValueError(f"{name}: Vorbis header packets do not end at a page end")
                    return packets, index + 1
    raise ValueError(f"{name}: fewer than {count} Ogg packets")


def _parse_comment(packet: bytes, name: str) -> tuple[str, list[str]]:
    """Vendor string and "KEY=value" entries of a Vorbis comment packet."""
    if not packet.startswith(_COMMENT_MAGIC):
        raise ValueError(f"{name}: the second Ogg packet is not a Vorbis comment header")
    try:
        pos = len(_COMMENT_MAGIC)
        (length,) = struct.unpack_from("<I", packet, pos)
        vendor = packet[pos + 4:pos + 4 + length].decode("utf-8")
        pos += 4 + length
        (n,) = struct.unpack_from("<I", packet, pos)
        pos += 4
        comments = []
        for _ in range(n):
            (length,) = struct.unpack_from("<I", packet, pos)
            if pos + 4 + length > len(packet):
                raise ValueError("comment runs past the packet")
            comments.append(packet[pos + 4:pos + 4 + length].decode("utf-8"))
            pos += 4 + length
    except (struct.error, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{name}: malformed Vorbis comment header ({err})") from None
    return vendor, comments


def _comment_packet(vendor: str, comments: list[str]) -> bytes:
    parts = [_COMMENT_MAGIC]
    for text in (vendor, None, *comments):
        if text is None:
            parts.append(struct.pack("<I", len(comments)))
            continue
        raw = text.encode("utf-8")
        parts += [struct.pack("<I", len(raw)), raw]
    return b"".join(parts) + b"\x01"


def _packet_pages(packets: list[bytes], serial: int, sequence: int) -> list[_Page]:
    """Header packets laid out on consecutive pages of at most 255 lacing values (granule 0)."""
    lacing, body = [], b"".join(packets)
    for packet in packets:
        lacing += [255] * (len(packet) // 255) + [len(packet) % 255]
    pages, pos, continued = [], 0, False
    for start in range(0, len(lacing), 255):
        chunk = bytes(lacing[start:start + 255])
        ends = any(size < 255 for size in chunk)
        # granule -1 marks a page on which no packet ends (RFC 3533, section 6)
        pages.append(_Page(_CONTINUED if continued else 0, 0 if ends else -1, serial, sequence + len(pages),
                           chunk, body[pos:pos + sum(chunk)]))
        pos += sum(chunk)
        continued = chunk[-1] == 255
    return pages


def read_ogg_tags(path: str | Path) -> dict[str, str]:
    """The Vorbis comments of an Ogg Vorbis file as {KEY (upper case): value}; the last one wins."""
    name = str(path)
    data = Path(path).read_bytes()
    packets, _ = _header_packets(_pages(data, name), name, 2)
    _, comments = _parse_comment(packets[1], name)
    tags = {}
    for entry in comments:
        key, sep, value = entry.partition("=")
        if sep:
            tags[key.upper()] = value
    return tags


def _check_key(key: str) -> None:
    if not key or any(not 0x20 <= ord(c) <= 0x7D or c == "=" for c in key):
        raise ValueError(f"Vorbis comment key {key!r}: must be ASCII 0x20-0x7D without '='")


def set_vorbis_tags(path: str | Path, tags: dict[str, str]) -> None:
    """Add `tags` to the comment header of the Ogg Vorbis file at `path`, replacing same-named ones.

    Rewrites the file in place, so call it on a temporary file (`utils.atomic.atomic_file`)."""
    for key in tags:
        _check_key(key)
    name = str(path)
    pages = list(_pages(Path(path).read_bytes(), name))
    if len({page.serial for page in pages}) != 1:
        raise ValueError(f"{name}: multiplexed Ogg streams are not supported")
    _, n_ident_pages = _header_packets(pages, name, 1, whole_pages=True)
    packets, n_header_pages = _header_packets(pages, name, 3, whole_pages=True)
    if n_ident_pages != 1:
        raise ValueError(f"{name}: the Vorbis identification header is not alone on the first page")
    vendor, comments = _parse_comment(packets[1], name)
    replaced = {key.upper() for key in tags}
    comments = [c for c in comments if c.partition("=")[0].upper() not in replaced]
    comments += [f"{key}={value}" for key, value in tags.items()]
    headers = _packet_pages([_comment_packet(vendor, comments), packets[2]], pages[0].serial, 1)
    audio = pages[n_header_pages:]
    for i, page in enumerate(audio):
        page.sequence = 1 + len(headers) + i
    Path(path).write_bytes(b"".join(page.to_bytes() for page in [pages[0], *headers, *audio]))

"""Raw PCM on standard input for live SENSE: refused when it is not PCM, cut into blocks as it arrives.

`melos sense --live -` reads 16-bit little-endian PCM. Anything else piped in would be analysed as
noise, so the first HEAD_BYTES are checked first: empty input, a terminal, an audio file (RIFF /
RF64 WAV, Ogg, FLAC, AIFF, MP3 with an ID3 tag or starting on an MPEG audio frame) and text are
refused with what to do instead.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from .live import MAX_BLOCK

RATES = (8000, 192000)  # Hz: what SenseStream analyses
MAX_CHANNELS = 32
HEAD_BYTES = 4096  # standard input's first bytes, checked for a file's signature before anything is analysed


def check_format(rate: int | None, channels: int | None) -> tuple[int, int]:
    """(rate, channels) of the PCM, channels 1 by default; a ValueError naming the option when out of range."""
    if rate is None:
        raise ValueError("--live - reads raw PCM: give its sample rate with --rate")
    if not RATES[0] <= rate <= RATES[1]:
        raise ValueError(f"--rate must be {RATES[0]}-{RATES[1]} Hz (the sample rate of the PCM), got {rate}")
    channels = 1 if channels is None else channels
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"--channels must be 1-{MAX_CHANNELS} (the PCM's interleaved channels), got {channels}")
    return rate, channels


def read_head(stdin) -> bytes:
    """The first HEAD_BYTES of standard input (fewer if it ends), refused when it is not raw PCM:
    empty, a terminal, an audio file's signature, or text."""
    if stdin.isatty():
        raise ValueError("--live - reads raw 16-bit PCM from standard input, which is a terminal here: pipe the "
                         "PCM in (arecord -t raw ... | melos sense --live - --rate R), or pass a file: "
                         "melos sense --live FILE")
    head = b""
    while len(head) < HEAD_BYTES and (data := stdin.read1(HEAD_BYTES - len(head))):
        head += data
    if not head:
        raise ValueError("standard input is empty: --live - reads raw 16-bit PCM from it "
                         "(arecord -t raw ... | melos sense --live - --rate R); for a file: melos sense --live FILE")
    if (kind := _audio_file_kind(head)) is not None:
        raise ValueError(f"standard input is {kind}, not raw PCM: pass the file itself (melos sense --live FILE), "
                         f"or decode it to raw 16-bit PCM")
    if _is_text(head):
        raise ValueError("standard input is text, not raw 16-bit PCM: --live - reads audio samples "
                         "(arecord -t raw ... | melos sense --live - --rate R)")
    return head


def _audio_file_kind(head: bytes) -> str | None:
    """What audio file `head` starts like ("a WAV file (RIFF)", ...), or None."""
    signatures = {b"RIFF": "a WAV file (RIFF)", b"RF64": "a WAV file (RF64)", b"OggS": "an Ogg file (OggS)",
                  b"fLaC": "a FLAC file (fLaC)", b"ID3": "an MP3 file (ID3 tag)"}
    for magic, kind in signatures.items():
        if head.startswith(magic):
            return kind
    if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC"):
        return "an AIFF file (FORM)"
    first = _mpeg_frame_length(head[:4])
    # 16-bit PCM may start with 0xFF 0xFx too (a small negative sample): a valid header is not enough
    # where the head holds the next one, which must be a valid header as well
    if first is not None and (len(head) < first + 4 or _mpeg_frame_length(head[first:first + 4]) is not None):
        return "an MPEG audio stream (MP3: frame sync 0xFFE)"
    return None


# kbit/s for bitrate indices 1-14: MPEG-1 layers I, II, III; MPEG-2/2.5 layer I; MPEG-2/2.5 layers II and III
_BITRATES = {(1, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
             (1, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
             (1, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
             (2, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
             (2, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}  # by version bits


def _mpeg_frame_length(header: bytes) -> int | None:
    """Bytes of the MPEG audio frame whose 4-byte header this is, or None if it is not a valid one
    (11 sync bits, no reserved version, layer or sample rate, a bitrate that is neither free nor bad)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, 4 - ((header[1] >> 1) & 3)  # layer bits 3, 2, 1: layers I, II, III
    bitrate_index, rate_index, padding = header[2] >> 4, (header[2] >> 2) & 3, (header[2] >> 1) & 1
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = 1000 * _BITRATES[(1, layer) if mpeg1 else (2, min(layer, 2))][bitrate_index - 1]
    sample_rate = _MPEG_RATES[version][rate_index]
    if layer == 1:
        return (12 * bitrate // sample_rate + padding) * 4
    return (144 if mpeg1 or layer == 2 else 72) * bitrate // sample_rate + padding


def _is_text(head: bytes) -> bool:
    """Whether `head` is UTF-8 text (printable characters and white space only)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the head
            return False
        text = head[:err.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\t\n\r" for c in text)


def pcm_blocks(stdin, head: bytes, sample_rate: int, channels: int) -> Iterator[np.ndarray]:
    """Blocks [n, channels] of 16-bit little-endian PCM from `head` and then `stdin`: what has arrived,
    up to 10 ms each, without waiting for a block to fill; a stream that ends inside a frame raises
    ValueError."""
    frame = 2 * channels
    size = max(1, int(MAX_BLOCK * sample_rate)) * frame
    pending = head
    while True:
        whole = len(pending) - len(pending) % frame
        for start in range(0, whole, size):
            yield np.frombuffer(pending[start:min(start + size, whole)], dtype="<i2").reshape(-1, channels) / 32768.0
        pending = pending[whole:]
        data = stdin.read1(size)  # at most one read of the pipe: returns what is there
        if not data:
            break
        pending += data
    if pending:
        raise ValueError(f"standard input ended inside a frame: the last {len(pending)} bytes are not a "
                         f"whole {channels}-channel 16-bit frame ({frame} bytes)")

"""`melos sense`: haptic tracks from music, in the formats devices read."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from typing import Callable, Iterator

import numpy as np

from .options import add_allow_truncated, add_progress

HELP = """\
Turn music into haptic (vibrotactile) tracks, time-aligned with the audio. Each input is
analysed (loudness envelopes, low band, brightness, onsets, beats and downbeats, harmonic /
percussive stems), mapped to one haptic track (transients on onsets and beats, a continuous bed
from the bass), and exported. Every export passes a validator of its format before it is written.

formats (--formats, default the five haptic ones):
  ahap     haptics.ahap: Apple Core Haptics pattern (iPhone; CHHapticPattern, AVAudioPlayer + CHHapticEngine)
  android  haptics.android.json: timings (ms) and amplitudes (0-255) for
           VibrationEffect.createWaveform (any Android phone), and under "onoff" off/on timings
           for createWaveform(timings, -1) on vibrators without amplitude control
  ogg      haptics.ogg: the audio plus haptic PCM channel(s), tagged ANDROID_HAPTIC=<n>: Android
           plays the haptics with the music on devices with audio-coupled haptics
  haptic   haptics.haptic: Meta Haptics Studio / Lofelt clip (Meta Quest controllers, Haptics SDK)
  wav      drive.wav: 8 kHz signal for a voice-coil actuator or a haptic vest's audio input,
           a carrier at the actuator's resonance (--carrier, default 170 Hz)
  html     sense.html: one offline page with the audio and every lane (waveform, spectrogram,
           beats, onsets, stems, haptic layers, sections), a playhead on the audio's clock,
           click to seek, and vibration with the transients where the browser can
  mp4      video.mp4: H.264 + AAC, 720p 30 fps: the score scrolling under a fixed playhead
           and an audio-reactive panel (bass / mid / treble, beat pulses)

OUT gets a folder per input (its path relative to INPUT) with the files above and analysis.json,
plus index.jsonl (one row per input). A bad file is reported with its reason and the others go
on; the exit status is 1 if any failed. Learned beat trackers and separators (Beat This!,
Demucs) run only from a checkpoint file you give; melos never downloads weights.

sections (--model, optional, slower): a melos encoder embeds 2 s windows every second; where the
embeddings change (novelty on their self-similarity) the music is cut into sections of at least
8 s, listed in analysis.json. Each section's haptics are scaled by its loudness relative to the
whole track (0.6-1.3x), so a quiet intro is gentler and a loud chorus stronger; a section
quieter than the track keeps only that fraction of its transients (at least half, the
strongest) and no beat taps, so it is sparser too.

tags (--probe, with --model): a probe `melos probe` saved (RESULTS/probes/<n>-<task>.safetensors)
tags each section: the encoder's hidden states pooled over the task's windows go through the
probe, and its probabilities averaged over the section's windows are listed in analysis.json
(the 5 likeliest tags, and any other above 0.5). The probe must come from the same --model
(same weights); another one is refused.

live (--live): INPUT is analysed as it plays and the haptic events are written as they happen,
one JSON object per line on standard output (or sent to WebSocket clients with --serve):
  {"type": "transient", "time": s, "intensity": 0..1, "sharpness": 0..1, "layer": "onset"}
  {"type": "continuous", "time": s, "amplitude": 0..1, "frequency": 0..1}      (every 10 ms)
times in seconds from the stream's start. The analysis is causal with a fixed 10 ms look-ahead:
a transient is dated at its attack and returned at most 15 ms of stream after it (and up to one
block more while a block fills); a reader in another process gets its line 9 ms after the
attack on median, 15 ms at the 95th percentile, with 10 ms blocks of PCM on standard input.
INPUT is an audio file, played at real-time pace (--fast: as fast as it decodes), or - for raw
PCM on standard input: 16-bit signed little-endian integers, channels interleaved, at --rate Hz
with --channels channels (1-32). Standard input that is an audio file (WAV, Ogg, FLAC, AIFF,
MP3), text, or empty is refused: pass the file itself as INPUT, or decode it to raw PCM.
With --serve PORT every client of ws://127.0.0.1:PORT gets every event as a JSON text message
(open sense.html?live=ws://127.0.0.1:PORT).

A reader that falls behind (standard output read too slowly, a slow WebSocket client) loses
events instead of getting them late, and never holds up the input: an event that waited more
than --max-lag (100 ms) for its reader is dropped, a continuous one at half of it, and with
it every queued continuous event but the newest, so the bed goes first and the transients
last. Drops are reported on standard error at most once a second while they happen, and at
the end. Buffers do not hide a slow reader: on a pipe the next line is written only once the
reader has taken the last (so read lines as they come, not in large blocks), and a WebSocket
client gets the next message only after answering a ping sent behind the last. --max-lag 0
keeps every event (the analysis then waits for standard output, as with --fast).

examples:
  melos sense song.ogg --out haptics/
  melos sense music/ --out haptics/ --formats ahap,android --preset punchy --plot
  melos sense files.jsonl --out haptics/ --skip-existing          # resume
  melos sense song.ogg --out haptics/ --model m-a-p/MERT-v1-95M   # with sections
  melos sense song.ogg --out haptics/ --model m-a-p/MERT-v1-95M \
      --probe results/probes/0-genre.safetensors                  # with tags per section
  melos sense --live song.ogg                                      # JSON lines, real time
  melos sense --live song.ogg --serve 8765                         # to sense.html?live=ws://127.0.0.1:8765
  arecord -f S16_LE -r 48000 -c 2 -t raw | melos sense --live - --rate 48000 --channels 2
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    # melos.sense is not imported here: it loads librosa, and `melos --help` should stay fast
    p = commands.add_parser("sense", help="music to haptic tracks (AHAP, Android, Ogg, Meta .haptic, drive WAV), "
                                          "an offline page, a video, live events",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="audio file, folder (searched recursively) or JSONL manifest with a 'path' per line")
    p.add_argument("--out", default=None, help="output folder (required, except with --live)")
    p.add_argument("--formats", default=None,
                   help="comma list of the formats above (default ahap,android,ogg,haptic,wav)")
    p.add_argument("--preset", default="default", help="how strong transients and the bed are: subtle, default or punchy")
    p.add_argument("--beats", default="librosa",
                   help="beat tracker: librosa (default, no weights) or beat-this:CHECKPOINT (a Beat This! "
                        "checkpoint file you downloaded)")
    p.add_argument("--stems", default="hpss",
                   help="stem separation: hpss (harmonic/percussive, default) or demucs:CHECKPOINT")
    p.add_argument("--min-gap", type=float, default=0.08,
                   help="shortest time between two transients in seconds, 0.05-0.2 (default 0.08)")
    p.add_argument("--carrier", dest="carrier_hz", type=float, default=170.0,
                   help="actuator resonance for drive.wav and the Ogg's haptic channel, 150-250 Hz (default 170)")
    p.add_argument("--model", default=None,
                   help="optional, slower: a melos encoder (preset, checkpoint folder or model.safetensors) whose "
                        "embeddings split the music into sections, each felt as strongly as it is loud")
    p.add_argument("--probe", default=None,
                   help="with --model: a probe file `melos probe` saved for that model "
                        "(OUT/probes/<n>-<task>.safetensors), for per-section tags")
    p.add_argument("--plot", action="store_true", help="also write track.png: the waveform with the haptic layers")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep inputs an earlier run finished (resume an interrupted run); retry failed ones")
    add_allow_truncated(p, "that part is turned into haptics")
    add_progress(p)
    live = p.add_argument_group("live mode")
    live.add_argument("--live", action="store_true",
                      help="analyse INPUT (a file, or - for raw PCM on standard input) as it plays; events as "
                           "JSON lines")
    live.add_argument("--fast", action="store_true", help="with --live and a file: do not wait for real time")
    live.add_argument("--rate", type=int, default=None,
                      help="with --live -: sample rate of the raw PCM on standard input, 8000-192000 Hz")
    live.add_argument("--channels", type=int, default=None,
                      help="with --live -: interleaved channels of the raw PCM (16-bit little-endian), 1-32, "
                           "default 1")
    live.add_argument("--serve", type=int, default=None, metavar="PORT",
                      help="with --live: serve the events on ws://127.0.0.1:PORT instead of standard output")
    live.add_argument("--max-lag", type=float, default=None, metavar="MS",
                      help="with --live: an event that waits longer than MS for its reader (standard output or a "
                           "WebSocket client) is dropped, a continuous one at half of it (default 100; 0: keep "
                           "every event, the analysis then waits for the reader, as with --fast)")
    live.add_argument("--queue-size", type=int, default=256,
                      help="with --serve: the most events held per client (default 256)")


def run(input: str, out: str | None, formats: str | None, min_gap: float, probe: str | None = None,
        live: bool = False, fast: bool = False, rate: int | None = None, channels: int | None = None,
        serve: int | None = None, queue_size: int = 256, max_lag: float | None = None, **kwargs) -> int:
    if not 0.05 <= min_gap <= 0.2:
        raise ValueError(f"--min-gap must be 0.05-0.2 s, got {min_gap:g}")
    if live:
        if out is not None:
            raise ValueError("--out is for files written offline; --live writes events to standard output or --serve")
        return run_live(input, fast=fast, rate=rate, channels=channels, serve=serve, queue_size=queue_size,
                        max_lag=max_lag, min_gap=min_gap, preset=kwargs["preset"],
                        allow_truncated=kwargs["allow_truncated"])
    used = [f"--{k}" for k, v in (("fast", fast), ("rate", rate), ("channels", channels), ("serve", serve),
                                  ("max-lag", max_lag is not None)) if v]
    if used:
        raise ValueError(f"{', '.join(used)} only work with --live")
    if out is None:
        raise ValueError("--out is required (the folder the haptic files are written to), except with --live")
    from ..sense import DEFAULT_FORMATS, sense

    chosen = [f.strip() for f in formats.split(",") if f.strip()] if formats else list(DEFAULT_FORMATS)
    summary = sense(input, out, formats=chosen, min_gap=min_gap, probe=probe, **kwargs)
    speed = summary.audio_seconds / max(summary.wall_seconds, 1e-9)
    print(f"haptics for {summary.n_done} files ({summary.audio_seconds / 60:.1f} min of audio, {speed:.1f}x real "
          f"time), skipped {summary.n_skipped} done earlier, {len(summary.failed)} failed -> {summary.out_dir}")
    for reason in summary.failed.values():
        print(f"  failed: {reason}", file=sys.stderr)
    return 0 if summary.ok else 1


def run_live(input: str, *, fast: bool = False, rate: int | None = None, channels: int | None = None,
             serve: int | None = None, queue_size: int = 256, max_lag: float | None = None, min_gap: float = 0.08,
             preset: str = "default", allow_truncated: bool = False) -> int:
    """`melos sense --live`: stream INPUT's haptic events to standard output or WebSocket clients."""
    from ..sense.live import LiveConfig, SenseStream
    from ..sense.live_lag import MAX_LAG

    max_lag_ms = 1000 * MAX_LAG if max_lag is None else max_lag
    if not (max_lag_ms == 0 or 1 <= max_lag_ms <= 60000):
        raise ValueError(f"--max-lag must be 1-60000 ms (or 0: keep every event), got {max_lag_ms:g}")
    if input == "-":
        from ..sense.live_input import check_format, pcm_blocks, read_head

        sample_rate, channels = check_format(rate, channels)
        blocks = pcm_blocks(sys.stdin.buffer, read_head(sys.stdin.buffer), sample_rate, channels)
    else:
        if rate is not None or channels is not None:
            raise ValueError("--rate and --channels describe raw PCM on standard input (INPUT -), not a file")
        blocks, sample_rate = _file_blocks(input, allow_truncated)
        channels = 1
    stream = SenseStream(sample_rate, channels, LiveConfig(min_gap=min_gap, preset=preset))
    paced = not fast and input != "-"  # standard input arrives at its own pace
    # with --fast there is no real time to fall behind: every event is kept, the analysis waits for the reader
    bound = None if max_lag_ms == 0 or (fast and input != "-") else max_lag_ms / 1000
    # what the imports made (torch, librosa: 200k objects) lives as long as the process; frozen, it is out of
    # the collector's way: a full collection in mid-stream would hold every thread for ~90 ms
    gc.collect()
    gc.freeze()
    # the reader, the analysis, the writer and the event loop hand over to each other several times per
    # 10 ms block; Python's default 5 ms between thread switches would stand between an event and its reader
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        if serve is None:
            return _write_lines(stream, blocks, paced, bound)
        import asyncio

        return asyncio.run(_serve(stream, blocks, serve, queue_size, paced, bound))
    except KeyboardInterrupt:  # Ctrl-C is how a live stream is stopped: no traceback
        return 130
    finally:
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()


def _file_blocks(path: str, allow_truncated: bool) -> tuple[Iterator[np.ndarray], int]:
    """10 ms mono blocks of a decoded file at its own rate."""
    from ..audio import info, load
    from ..sense.live import MAX_BLOCK

    sample_rate = info(path, allow_truncated=allow_truncated).sample_rate
    audio = load(path, sample_rate, mono=True, allow_truncated=allow_truncated).numpy()
    n = max(1, int(MAX_BLOCK * sample_rate))
    return (audio[i:i + n] for i in range(0, len(audio), n)), sample_rate


def _produce(stream, blocks: Iterator[np.ndarray], emit: Callable[[dict], None], paced: bool,
             stop: threading.Event) -> None:
    """Push every block through `stream` and `emit` its events; with `paced`, no block before the
    wall clock reaches its end (a file played in real time)."""
    start = time.monotonic()
    played = 0
    for block in blocks:
        if stop.is_set():
            break
        played += len(block)
        if paced:
            time.sleep(max(0.0, start + played / stream.sample_rate - time.monotonic()))
        for event in stream.push(block):
            emit(event)


def _write_lines(stream, blocks: Iterator[np.ndarray], paced: bool, max_lag: float | None) -> int:
    """Events as JSON lines on standard output, through a `LineWriter` that drops what waited
    longer than `max_lag` s for the reader; the exit status."""
    from ..sense.live_lag import LagQueue, LineWriter

    writer = LineWriter(sys.stdout, LagQueue(max_lag=max_lag))
    writer.start()
    try:
        _produce(stream, blocks, writer.put, paced, writer.broken)
    except BaseException:
        writer.close(timeout=1.0)  # what was analysed goes out, but an error or Ctrl-C does not wait on the reader
        raise
    writer.close()
    if writer.broken.is_set():  # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(f"sense: {stream.time:.2f} s of audio, {writer.queue.describe()}", file=sys.stderr, flush=True)
    return 0


async def _serve(stream, blocks: Iterator[np.ndarray], port: int, queue_size: int, paced: bool,
                 max_lag: float | None) -> int:
    import asyncio

    from ..sense.live_server import EventServer

    server = EventServer(port, queue_size=queue_size, max_lag=max_lag)
    await server.start()
    print(f"sense: serving events on {server.url} (open sense.html?live={server.url})", file=sys.stderr, flush=True)
    stop = threading.Event()
    try:
        await asyncio.to_thread(_produce, stream, blocks, server.publish_threadsafe, paced, stop)
        return 0
    finally:
        stop.set()
        await server.stop()
        print(f"sense: stream ended after {stream.time:.2f} s; {len(server.finished)} client(s) served",
              file=sys.stderr, flush=True)

"""`melos sense --formats mp4`: the analysis and its haptic track as a video, with the music.

    ┌────────────────────────────────────────────────────────────────────┐
    │ title  BPM · key · integrated LUFS                  0:12.3 / 1:00.0│ header
    │  ( orb )    Am          3x┃bass ┃mid ┃treble    1┃haptic          │ panel: audio-reactive
    │  beat dots  key, bar, beat, short-term LUFS  (scales left of each) │ (40 % of the height)
    ├──────────────┬─────────────────────────────────────────────────────┤
    │ time         │                                                     │
    │ sections     │  (or a note: --model gives sections)                │ score: scrolls right
    │ chords       │                                                     │ to left under the
    │ waveform     │  (past, dimmed)                    (to come)        │ fixed playhead
    │ beats        │  bar numbers over the downbeats                     │ (60 %)
    │ haptic taps  │                                                     │
    │ haptic bed   │                                                     │
    └──────────────┴─ playhead ──────────────────────────────────────────┘

Every lane's name carries its legend (tap colours by layer, the bed's amplitude and sharpness
line, the waveform's brightness colours), drawn over its top-left corner.

Panel: the orb is coloured by the spectral centroid (dull red to bright blue, as the waveform),
flashes on the frame of each beat and sends out a ring (white on downbeats); the now box names
the chord ("N.C.": none), the key, the bar and beat, and the 3 s loudness; the band bars are
each band's energy over its own few-second average (melos.sense.visual_features) on a 0-3x
scale, each pulsing around the 1x line, with a red "> 3x" cap when the value is cut at the top;
the haptic bar is the continuous layer's amplitude (amber, 0-1), topped by each tap's intensity
as it decays (pink).

Sync: frame k covers [k / fps, (k + 1) / fps) and shows that interval: the score scrolled to
time k / fps, the panel's values for the frame (a beat at b flashes on frame floor(b * fps)).
Video and audio timestamps both start at 0.

Speed: the score is drawn once, column by column, into a wide strip (in chunks of STRIP_SCREENS
screens, so memory stays bounded for long files); a frame copies a slice of it, dims the past,
and draws the panel with a few numpy fills and blends on small regions. Pictures are planar RGB
(gbrp), which swscale turns into yuv420p (BT.709) about twice as fast as packed RGB.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr
from av.video.reformatter import VideoReformatter

from ...utils.atomic import atomic_file
from ..analysis import Analysis
from ..track import HapticTrack
from ..visual_features import (
    BANDS,
    at_frames,
    band_energy,
    frame_bounds,
    frames_since,
    impulses,
    n_video_frames,
    peak_hold,
    relative_energy,
    smooth,
)

VISIBLE_SECONDS = 8.0  # of score across the frame
PLAYHEAD = 0.25  # the playhead's position, as a fraction of the width: 2 s past, 6 s to come
STRIP_SCREENS = 16  # screens of score drawn at a time
RELATIVE_FULL = 3.0  # a band bar is full at 3x its average
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")

BACKGROUND = (14, 16, 22)
LANE = (24, 27, 36)
GRID = (40, 44, 56)
TEXT = (225, 228, 235)
MUTED = (130, 136, 150)
BAND_COLOURS = {"bass": (255, 112, 84), "mid": (126, 224, 129), "treble": (89, 195, 255)}
HAPTIC = (255, 179, 71)  # the continuous layer (amber)
FREQUENCY = (200, 140, 255)  # its frequency line (lilac)
TAP_COLOURS = {"onset": (255, 93, 115), "beat": (108, 180, 255), "downbeat": (255, 255, 255)}
SECTION_COLOURS = ((52, 73, 120), (96, 62, 118), (44, 104, 104), (118, 84, 52))
CHORD_COLOURS = ((40, 78, 64), (64, 60, 98))
CLIP = (255, 64, 64)  # a meter's over-range mark
NO_SECTIONS = "no sections: melos sense --model ENCODER splits the music into sections"
# spectral brightness (sharpness 0..1) -> colour: dull red, orange, yellow, green, cyan, bright blue
BRIGHTNESS_STOPS = np.array([0.0, 0.3, 0.45, 0.6, 0.78, 1.0])
BRIGHTNESS_COLOURS = np.array([(220, 50, 47), (255, 140, 40), (250, 214, 60), (90, 214, 110), (60, 200, 230),
                               (110, 120, 255)], dtype=np.float64)


STAGES = ("prepare", "score", "draw", "convert", "encode", "audio")


@dataclass
class VideoStats:
    """What `write_video` did and where its time went, per stage (STAGES): wall-clock seconds, and
    CPU seconds of the calling thread (the fair split on a shared machine; with threads=1 all
    the work runs on that thread)."""

    n_frames: int
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cpu_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


class _Stopwatch:
    """Adds the wall and thread CPU time since the previous `lap` to a stage of `stats`."""

    def __init__(self, stats: VideoStats):
        self.stats = stats
        self.start()

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()

    def lap(self, stage: str) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.stats.seconds[stage] += wall - self.wall
        self.stats.cpu_seconds[stage] += cpu - self.cpu
        self.wall, self.cpu = wall, cpu


def write_video(path: str | Path, audio: np.ndarray, sample_rate: int, analysis: Analysis, track: HapticTrack, *,
                title: str = "", width: int = 1280, height: int = 720, fps: int = 30, preset: str = "veryfast",
                crf: int = 23, threads: int = 0) -> VideoStats:
    """Write the video of `analysis` and `track` with `audio` muxed in: MP4, H.264 yuv420p + AAC.

    Args:
        audio: waveform [C, N] or [N] at `sample_rate`; mono stays mono, more than two channels
            are mixed to mono. AAC keeps the rate when AAC has it, else the audio goes to 48 kHz.
        width, height: even, at least 160 x 90; fps: 1-120 frames per second.
        preset: libx264's speed preset (veryfast: real time on one core at 720p); crf: its quality
            (18 fine .. 28 small); threads: encoder and converter threads, 0 for all cores.

    The file appears only once complete (written under a temporary name, then renamed).

    Raises:
        ValueError: empty or non-finite audio, or a setting out of range.
    """
    stats = VideoStats(0)
    watch = _Stopwatch(stats)
    _check(width, height, fps, preset, crf, threads)
    x = _channels(audio)
    layout = Layout.of(width, height, fps, sections=bool(analysis.sections))
    mono = x.mean(axis=0, dtype=np.float64)
    duration = x.shape[1] / sample_rate
    stats.n_frames = n_frames = n_video_frames(duration, fps)
    panel = Panel(layout, mono, sample_rate, duration, analysis, track, title, n_frames)
    strip = ScoreStrip(layout, mono, sample_rate, duration, analysis, track, _Stopwatch(stats))
    rate = sample_rate if sample_rate in AAC_RATES else 48000
    if rate != sample_rate:
        x = soxr.resample(x.T, sample_rate, rate, quality="HQ").T.astype(np.float32)
    watch.lap("prepare")
    with atomic_file(path) as tmp:
        _encode(tmp, x, rate, layout, panel, strip, n_frames, preset, crf, threads, watch)
    for times in (stats.seconds, stats.cpu_seconds):
        times["draw"] -= times["score"]  # the strip's chunks are drawn inside frames' drawing
    return stats


def _encode(path: Path, x: np.ndarray, rate: int, layout: Layout, panel: Panel, strip: ScoreStrip, n_frames: int,
            preset: str, crf: int, threads: int, watch: _Stopwatch) -> None:
    """Draw, convert and encode every frame, with the audio interleaved as it is reached."""
    fps = layout.fps
    with av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = layout.width, layout.height, "yuv420p"
        video.options = {"preset": preset, "crf": str(crf)}
        context = video.codec_context
        context.thread_count = threads
        context.colorspace = context.color_primaries = context.color_trc = 1  # BT.709, as converted below
        context.color_range = 1  # limited ("MPEG") range, as swscale writes yuv420p
        layout_name = "mono" if x.shape[0] == 1 else "stereo"
        sound = container.add_stream("aac", rate=rate, layout=layout_name)
        sound.bit_rate = 128000 if layout_name == "mono" else 192000
        converter = VideoReformatter()
        audio_bounds = frame_bounds(n_frames, fps, rate)
        sent = 0  # audio samples encoded so far
        canvas = np.empty((3, layout.height, layout.width), dtype=np.uint8)
        watch.start()
        for k in range(n_frames):
            panel.draw(canvas, k)
            canvas[:, layout.score_top:] = strip.window(k / fps)
            panel.draw_score_overlay(canvas)
            watch.lap("draw")
            frame = av.VideoFrame(layout.width, layout.height, "gbrp")
            for plane, channel in zip(frame.planes, (1, 2, 0)):  # gbrp stores G, B, R; rows may be padded
                rows = np.frombuffer(plane, np.uint8).reshape(layout.height, plane.line_size)
                rows[:, :layout.width] = canvas[channel]
            frame = converter.reformat(frame, format="yuv420p", dst_colorspace="itu709", threads=threads)
            frame.pts, frame.time_base = k, Fraction(1, fps)
            watch.lap("convert")
            for packet in video.encode(frame):
                container.mux(packet)
            watch.lap("encode")
            sent = _encode_audio(container, sound, x, rate, sent, min(int(audio_bounds[k + 1]), x.shape[1]))
            watch.lap("audio")
        for packet in video.encode(None):
            container.mux(packet)
        watch.lap("encode")
        _encode_audio(container, sound, x, rate, sent, x.shape[1])
        for packet in sound.encode(None):
            container.mux(packet)
    watch.lap("audio")  # with the file's closing (faststart moves the index to the front)


def _encode_audio(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, x: np.ndarray,
                  rate: int, start: int, stop: int) -> int:
    """Encode samples [start, stop) of `x` [C, N] in AAC's 1024-sample frames (a shorter one only
    at the very end); returns where it stopped (a multiple of 1024 unless at the end)."""
    size = 1024
    layout = "mono" if x.shape[0] == 1 else "stereo"
    while start < stop and (stop - start >= size or stop == x.shape[1]):
        chunk = np.ascontiguousarray(x[:, start:start + size])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        start += chunk.shape[1]
    return start


def _check(width: int, height: int, fps: int, preset: str, crf: int, threads: int) -> None:
    if width % 2 or height % 2 or width < 160 or height < 90:
        raise ValueError(f"video size must be even and at least 160x90 (yuv420p halves the colour planes), "
                         f"got {width}x{height}")
    if not 1 <= fps <= 120 or int(fps) != fps:
        raise ValueError(f"fps must be a whole number 1-120, got {fps}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if not 0 <= crf <= 51 or threads < 0:
        raise ValueError(f"crf must be 0-51 and threads >= 0, got crf {crf}, threads {threads}")


def _channels(audio: np.ndarray) -> np.ndarray:
    """float32 [1 or 2, N] from [N] or [C, N]; more than two channels are mixed to mono."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"audio must be a non-empty [C, N] or [N] array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio contains NaN or infinite samples")
    return x.mean(axis=0, keepdims=True) if x.shape[0] > 2 else x


@dataclass(frozen=True)
class Layout:
    """Where everything goes in a width x height frame; sizes scale with the height (720 = 1)."""

    width: int
    height: int
    fps: int
    scale: float
    header: int  # header height
    panel: tuple[int, int]  # y range of the audio-reactive panel
    score_top: int  # y where the score begins; it runs to the bottom
    lanes: dict[str, tuple[int, int]]  # lane -> y range inside the score
    pixels_per_second: float
    playhead: int  # x of the playhead
    orb: tuple[int, int]  # centre of the beat orb
    radius: float  # the orb's resting radius
    reach: int  # half-side of the square the orb, its rings and glow stay inside

    @classmethod
    def of(cls, width: int, height: int, fps: int, sections: bool) -> Layout:
        """The score (lanes) takes 60 % of the height, the panel above it the rest; without
        sections their lane is a slim one saying how to get them."""
        s = height / 720
        header = round(48 * s)
        score_top = round(288 * s)
        weights = {"time": 22, "sections": 28 if sections else 18, "chords": 28, "waveform": 96, "beats": 30,
                   "taps": 66, "bed": 66}
        gap = 4 * s
        unit = (height - score_top - gap * (len(weights) + 1)) / sum(weights.values())
        lanes, y = {}, gap
        for name, w in weights.items():
            lanes[name] = (round(y), round(y + w * unit))
            y += w * unit + gap
        radius = 42 * s
        reach = round(min(2.2 * radius, (score_top - header) / 2 - 4 * s))
        orb = (round(0.16 * width), round((header + score_top) / 2 - 18 * s))
        return cls(width, height, fps, s, header, (header, score_top), score_top, lanes,
                   width / VISIBLE_SECONDS, round(PLAYHEAD * width), orb, radius, reach)


def brightness_colour(position: np.ndarray) -> np.ndarray:
    """Spectral brightness 0..1 (melos sharpness) to RGB 0..255, [..., 3] float."""
    position = np.clip(np.asarray(position, dtype=np.float64), 0.0, 1.0)
    return np.stack([np.interp(position, BRIGHTNESS_STOPS, BRIGHTNESS_COLOURS[:, c]) for c in range(3)], axis=-1)


# --- drawing on planar uint8 pictures [3, H, W] ---------------------------------------------------

@functools.lru_cache(maxsize=2)
def _font(bold: bool):
    from matplotlib import font_manager, ft2font  # matplotlib's FreeType: no extra dependency

    properties = font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
    return ft2font.FT2Font(font_manager.findfont(properties))


@functools.lru_cache(maxsize=1024)
def text_mask(text: str, size: int, bold: bool = False) -> tuple[np.ndarray, int]:
    """Antialiased coverage of `text` at `size` pixels, [h, w] uint8, and the row of its baseline."""
    font = _font(bold)
    font.set_size(size, 72)  # at 72 dpi a point is a pixel
    with warnings.catch_warnings():  # a glyph DejaVu lacks (e.g. CJK in a file name) shows as a box
        warnings.simplefilter("ignore", UserWarning)
        font.set_text(text, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    mask = np.array(font.get_image(), dtype=np.uint8)
    mask.flags.writeable = False
    return mask, mask.shape[0] - round(font.get_descent() / 64)


def draw_text(img: np.ndarray, text: str, size: float, x: float, baseline: float, colour, *, bold: bool = False,
              align: str = "left", alpha: float = 1.0) -> int:
    """Write `text` with its baseline at row `baseline`, starting (align left), centred on or ending
    (align right) at column `x`; returns its width in pixels."""
    mask, base = text_mask(text, max(7, round(size)), bold)
    shift = {"left": 0, "centre": mask.shape[1] // 2, "right": mask.shape[1]}[align]
    blend(img, mask, round(x) - shift, round(baseline) - base, colour, alpha / 255)
    return mask.shape[1]


def blend(img: np.ndarray, alpha: np.ndarray, x: int, y: int, colour, scale: float = 1.0) -> None:
    """Blend `colour` into `img` [3, H, W] through `alpha` [h, w] (times `scale`) placed with its
    top-left corner at (x, y); whatever falls outside `img` is clipped."""
    h, w = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, img.shape[2]), min(y + h, img.shape[1])
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32) * scale
    region = img[:, y0:y1, x0:x1]
    target = np.asarray(colour, dtype=np.float32)[:, None, None]
    region[:] = (region + (target - region) * a + 0.5).astype(np.uint8)


def fill(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, colour) -> None:
    """Fill the rectangle [x0, x1) x [y0, y1) (rounded, clipped) with `colour`."""
    x0, x1 = max(round(x0), 0), min(round(x1), img.shape[2])
    y0, y1 = max(round(y0), 0), min(round(y1), img.shape[1])
    if x0 < x1 and y0 < y1:
        img[:, y0:y1, x0:x1] = np.asarray(colour, dtype=np.uint8)[:, None, None]


def _disc(radius: np.ndarray | float, distance: np.ndarray) -> np.ndarray:
    """Antialiased coverage (0..1) of a disc of `radius` given each pixel's distance from its centre."""
    return np.clip(radius - distance + 0.5, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _dot(radius: float) -> np.ndarray:
    """Coverage of a disc of `radius` (at least 1.5 px) in the middle of a square just holding it."""
    radius = max(radius, 1.5)
    half = math.ceil(radius) + 1
    yy, xx = np.mgrid[-half:half, -half:half] + 0.5
    return _disc(radius, np.hypot(yy, xx)).astype(np.float32)


# --- the scrolling score --------------------------------------------------------------------------

class ScoreStrip:
    """The score as one wide picture, time running left to right at `pixels_per_second`.

    Strip column c shows the time ((c - playhead) / pixels_per_second), so the window starting at
    column round(t * pixels_per_second) has time t under the playhead. It is drawn in chunks of
    STRIP_SCREENS screens (each with one screen of overlap, so every window lies in one chunk);
    windows are asked for in time order, so each chunk is drawn once.
    """

    def __init__(self, layout: Layout, mono: np.ndarray, sample_rate: int, duration: float, analysis: Analysis,
                 track: HapticTrack, watch: _Stopwatch | None = None):
        self.layout, self.mono, self.sample_rate, self.duration = layout, mono, sample_rate, duration
        self.analysis, self.track, self.watch = analysis, track, watch  # watch: times the chunks as "score"
        self.chunk_width = STRIP_SCREENS * layout.width
        self.peak = max(float(np.percentile(np.abs(mono[::7]), 99.9)), 1e-9)  # rare peaks clip, not shrink all
        self._index, self._chunk = -1, np.zeros(0)

    def window(self, t: float) -> np.ndarray:
        """The score seen at time t: a view [3, score height, width]."""
        x0 = round(t * self.layout.pixels_per_second)
        index = x0 // self.chunk_width
        if index != self._index:
            if self.watch:
                self.watch.start()
            start = index * self.chunk_width
            self._chunk = self.render(start, start + self.chunk_width + self.layout.width)
            self._index = index
            if self.watch:
                self.watch.lap("score")
        offset = x0 - self._index * self.chunk_width
        return self._chunk[:, :, offset:offset + self.layout.width]

    def render(self, a: int, b: int) -> np.ndarray:
        """Strip columns [a, b), [3, score height, b - a]."""
        L = self.layout
        img = np.empty((3, L.height - L.score_top, b - a), dtype=np.uint8)
        img[:] = np.asarray(BACKGROUND, np.uint8)[:, None, None]
        for name, (y0, y1) in L.lanes.items():
            if name != "time":
                fill(img, 0, y0, b - a, y1, LANE)
        edges = (np.arange(a, b + 1) - L.playhead) / L.pixels_per_second  # column c spans edges[c - a: c - a + 2]
        self._grid(img, a, edges)
        self._waveform(img, a, edges)
        self._beats(img, a)
        self._taps(img, a)
        self._bed(img, edges)
        self._chords(img, a)
        self._sections(img, a)
        return img

    def _x(self, t: float, a: int) -> int:
        """Column (in a chunk starting at strip column a) of time t."""
        return round(t * self.layout.pixels_per_second) + self.layout.playhead - a

    def _grid(self, img: np.ndarray, a: int, edges: np.ndarray) -> None:
        L = self.layout
        step = next((s for s in (1, 2, 5, 10, 15, 30, 60) if s * L.pixels_per_second >= 64 * L.scale), 60)
        y0, y1 = L.lanes["time"]
        top, bottom = L.lanes[next(iter(n for n in L.lanes if n != "time"))][0], L.lanes["bed"][1]
        for second in range(max(0, math.floor(edges[0])), min(math.floor(self.duration), math.floor(edges[-1])) + 1):
            x = self._x(second, a)
            labelled = second % step == 0
            fill(img, x, top, x + 1, bottom, GRID)
            fill(img, x, y1 - (6 if labelled else 3) * L.scale, x + 1, y1, MUTED)
            if labelled:
                draw_text(img, _clock(second, tenths=False), 13 * L.scale, x + 3 * L.scale, y1 - 5 * L.scale, MUTED)

    def _waveform(self, img: np.ndarray, a: int, edges: np.ndarray) -> None:
        """Per column the min..max of the samples (dim) and +-RMS (bright), coloured by brightness."""
        L = self.layout
        y0, y1 = L.lanes["waveform"]
        for downbeat in self.analysis.downbeats:  # bar lines behind the waveform
            x = self._x(downbeat, a)
            fill(img, x, y0, x + 1, y1, GRID)
        bounds = np.clip(np.round(edges * self.sample_rate).astype(np.int64), 0, len(self.mono))
        filled = np.flatnonzero(bounds[1:] > bounds[:-1])  # columns holding samples: one contiguous run
        if len(filled) == 0:
            return
        c0, c1 = filled[0], filled[-1] + 1
        samples = self.mono[bounds[c0]:bounds[c1]]
        starts = bounds[c0:c1] - bounds[c0]
        low, high = np.minimum.reduceat(samples, starts), np.maximum.reduceat(samples, starts)
        middle = (edges[c0:c1] + edges[c0 + 1:c1 + 1]) / 2
        an = self.analysis
        rms = np.interp(middle, an.times, an.rms)
        colour = brightness_colour(np.interp(middle, an.times, an.sharpness)).T[:, None, :]  # [3, 1, n]
        centre, half = (y0 + y1) / 2, (y1 - y0) / 2 - 1
        rows = np.arange(y0, y1)[:, None] + 0.5
        peak = (rows >= centre - high / self.peak * half - 0.5) & (rows <= centre - low / self.peak * half + 0.5)
        loud = np.abs(rows - centre) <= rms / self.peak * half + 0.5
        region = img[:, y0:y1, c0:c1]
        region[:] = np.where(peak, colour * 0.5, region)
        region[:] = np.where(loud & peak, colour, region)

    def _beats(self, img: np.ndarray, a: int) -> None:
        """Beats as short ticks, downbeats as tall ones with their bar number (bar 1 at the first)."""
        L = self.layout
        y0, y1 = L.lanes["beats"]
        w = max(1, round(2 * L.scale))
        size = 11 * L.scale
        numbered = y1 - y0 >= 20  # room for the numbers above the ticks
        top = y0 + size + 2 * L.scale if numbered else y0
        downbeats = {round(b, 6): i for i, b in enumerate(self.analysis.downbeats)}
        for beat in self.analysis.beats:
            x = self._x(beat, a)
            bar = downbeats.get(round(beat, 6))
            if bar is not None:
                fill(img, x - w, top, x + w, y1, TAP_COLOURS["downbeat"])
                if numbered and -4 * size < x < img.shape[2]:
                    draw_text(img, str(bar + 1), size, x + w + 2 * L.scale, y0 + size, MUTED)
            else:
                fill(img, x - w // 2, top + (y1 - top) * 0.4, x - w // 2 + w, y1, TAP_COLOURS["beat"])

    def _taps(self, img: np.ndarray, a: int) -> None:
        """Each transient as a stem of its intensity with a cap, coloured by what produced it."""
        L = self.layout
        y0, y1 = L.lanes["taps"]
        w = max(1, round(2 * L.scale))
        span = y1 - y0 - 3 * w
        for tap in sorted(self.track.transients, key=lambda t: t.intensity):  # strongest on top
            x = self._x(tap.time, a)
            if -3 * w <= x < img.shape[2] + 3 * w:
                top = y1 - tap.intensity * span
                colour = TAP_COLOURS.get(tap.layer, TEXT)
                fill(img, x - w // 2, top, x - w // 2 + w, y1, colour)
                fill(img, x - w - w // 2, top - w, x + w + w - w // 2, top + w, colour)

    def _bed(self, img: np.ndarray, edges: np.ndarray) -> None:
        """The continuous layer: amplitude as a filled area, frequency as a line."""
        L = self.layout
        y0, y1 = L.lanes["bed"]
        amplitude, frequency = self.track.continuous.at((edges[:-1] + edges[1:]) / 2)
        rows = np.arange(y0, y1)[:, None] + 0.5
        span = y1 - y0 - 2
        area = rows >= y1 - amplitude * span
        line = np.abs(rows - (y1 - frequency * span)) <= max(1.0, 1.2 * L.scale)
        line &= frequency > 0
        region = img[:, y0:y1]
        region[:] = np.where(area, (np.asarray(HAPTIC, np.float32) * 0.8)[:, None, None], region)
        region[:] = np.where(line, np.asarray(FREQUENCY, np.uint8)[:, None, None], region)

    def _chords(self, img: np.ndarray, a: int) -> None:
        """A block per chord with its name ("N", no chord, is left empty)."""
        L = self.layout
        y0, y1 = L.lanes["chords"]
        gap, size = max(1, round(L.scale)), 15 * L.scale
        for i, chord in enumerate(self.analysis.chords):
            name = chord_name(chord.label)
            x0, x1 = self._x(chord.start, a) + gap, self._x(chord.end, a) - gap
            lo, hi = max(x0, 0), min(x1, img.shape[2])
            if not name or lo >= hi:
                continue
            block = img[:, y0:y1, lo:hi]  # a view: the name drawn into it is clipped to the block
            block[:] = np.asarray(CHORD_COLOURS[i % len(CHORD_COLOURS)], np.uint8)[:, None, None]
            draw_text(block, name, size, x0 - lo + 5 * L.scale, (y1 - y0) / 2 + size * 0.36, TEXT, bold=True)

    def _sections(self, img: np.ndarray, a: int) -> None:
        """Blocks with their top tags (or number) and intensity; the label repeats every half
        screen, so a long section is named wherever it is seen. Without sections, a note on how
        to get them, repeated the same way."""
        L = self.layout
        y0, y1 = L.lanes["sections"]
        gap, size = max(1, round(2 * L.scale)), 14 * L.scale
        step = L.width // 2
        if not self.analysis.sections:
            lane = img[:, y0:y1]
            note = round(12 * L.scale)
            step = max(step, text_mask(NO_SECTIONS, max(7, note))[0].shape[1] + round(40 * L.scale))  # no overlaps
            first = (-a) % step - step  # strip columns that are multiples of step, so chunks agree
            for x in range(first, img.shape[2], step):
                draw_text(lane, NO_SECTIONS, note, x + 6 * L.scale, (y1 - y0) / 2 + 4 * L.scale, MUTED)
            return
        for i, section in enumerate(self.analysis.sections):
            x0, x1 = self._x(section.start, a) + gap, self._x(section.end, a) - gap
            lo, hi = max(x0, 0), min(x1, img.shape[2])
            if lo >= hi:
                continue
            top = sorted(section.tags.items(), key=lambda kv: -kv[1])[:2]
            label = "  ".join(f"{tag} {p:.0%}" for tag, p in top) or f"section {i + 1}"
            label += f"   x{section.intensity:.2f}"
            block = img[:, y0:y1, lo:hi]  # a view: labels drawn into it are clipped to the block
            block[:] = np.asarray(SECTION_COLOURS[i % len(SECTION_COLOURS)], np.uint8)[:, None, None]
            for x in range(x0 + round(6 * L.scale) + max(0, (lo - x0) // step - 1) * step, hi, step):
                draw_text(block, label, size, x - lo, (y1 - y0) / 2 + size * 0.36, TEXT)


def chord_name(label: str) -> str:
    """Harte "A:min" -> "Am", "C:maj" -> "C", "N" (no chord) -> ""."""
    if label in ("N", "X", ""):
        return ""
    root, _, quality = label.partition(":")
    return root + {"maj": "", "min": "m", "": ""}.get(quality, ":" + quality)


# --- the audio-reactive panel ---------------------------------------------------------------------

class Panel:
    """Header, orb, beat dots, the now box (chord, key, bar, loudness) and meters: every per-frame
    value computed up front, the static parts drawn once into `background`, so `draw` only copies
    it and draws what moves. The score's lane names and legends are drawn once into `labels`."""

    def __init__(self, layout: Layout, mono: np.ndarray, sample_rate: int, duration: float, analysis: Analysis,
                 track: HapticTrack, title: str, n_frames: int):
        L, fps = layout, layout.fps
        self.layout, self.duration, self.analysis = layout, duration, analysis
        s = L.scale
        # per-frame values
        relative = relative_energy(band_energy(mono, sample_rate, fps, n_frames), fps)
        held = np.stack([peak_hold(r, fps, 0.15) for r in relative])  # [3, K]
        self.bands = np.minimum(held, RELATIVE_FULL)
        self.over = held > RELATIVE_FULL  # [3, K]: the meter is full and says so
        self.since_beat = frames_since(analysis.beats, fps, n_frames)
        self.since_downbeat = frames_since(analysis.downbeats, fps, n_frames)
        self.beat_in_bar, self.beats_per_bar = _beat_in_bar(analysis, fps, n_frames)
        self.bar = _latest(analysis.downbeats, fps, n_frames)  # index of the bar playing, -1 before the first
        self.chord = _latest(np.array([c.start for c in analysis.chords]), fps, n_frames)
        rate, short = analysis.short_term_rate, analysis.short_term_lufs
        self.lufs = (short[np.clip(np.round((np.arange(n_frames) + 0.5) / fps * rate).astype(int), 0, len(short) - 1)]
                     if len(short) else None)
        voiced = analysis.centroid > 0
        brightness = (at_frames(analysis.times[voiced], analysis.sharpness[voiced], fps, n_frames)
                      if voiced.any() else np.full(n_frames, 0.5))
        self.colour = brightness_colour(smooth(brightness, fps, 0.15))  # [K, 3]
        rms = at_frames(analysis.times, analysis.rms, fps, n_frames)
        self.loudness = np.clip(rms / max(float(np.percentile(analysis.rms, 95)), 1e-9), 0.0, 1.2)
        self.haptic = track.continuous.at((np.arange(n_frames) + 0.5) / fps)[0]
        taps = track.transients
        self.taps = peak_hold(impulses(np.array([t.time for t in taps]), fps, n_frames,
                                       np.array([t.intensity for t in taps])), fps, 0.1)
        # geometry
        self.orb, self.radius, self.reach = L.orb, L.radius, L.reach
        reach = L.reach
        yy, xx = np.mgrid[-reach:reach, -reach:reach] + 0.5
        self.distance = np.hypot(yy, xx).astype(np.float32)
        edge = math.exp(-(reach / (1.6 * self.radius)) ** 2)  # the glow fades to 0 at the region's edge
        glow = (np.exp(-(self.distance / (1.6 * self.radius)) ** 2) - edge) / (1 - edge)
        self.glow = np.maximum(glow, 0.0).astype(np.float32)
        self.meters = self._meter_geometry()
        self.dots = self._dot_geometry()
        self.now_x = round(0.30 * L.width)  # the now box's left edge
        self.background = self._background(title, analysis)
        self.swatches: dict[str, tuple[int, int, int, int]] = {}  # legend entry -> its colour patch (x0, y0, x1, y1)
        self.labels = self._labels(analysis)

    def now(self, k: int) -> dict[str, str]:
        """What the now box says at frame k: chord, key, bar and beat, short-term loudness."""
        a = self.analysis
        chord = chord_name(a.chords[self.chord[k]].label) if self.chord[k] >= 0 else ""
        beat = self.beat_in_bar[k]
        return {"chord": chord or "N.C.", "key": f"key {a.key}" if a.key else "no key found",
                "bar": f"bar {self.bar[k] + 1}" if self.bar[k] >= 0 else "before bar 1",
                "beat": f"beat {beat + 1}" if beat >= 0 else "",
                "loudness": f"loudness {self.lufs[k]:.0f} LUFS (3 s window)" if self.lufs is not None else ""}

    def _meter_geometry(self) -> list[tuple[str, int, int, int, int]]:
        """(name, x0, x1, top, bottom) of the four meters, right part of the panel."""
        L, s = self.layout, self.layout.scale
        y0, y1 = L.panel
        left, right = 0.57 * L.width, L.width - 30 * s
        n, width = 4, min(70 * s, (right - left) / 5)
        step = (right - left - width) / (n - 1)
        top, bottom = y0 + 40 * s, y1 - 34 * s
        names = [*BANDS, "haptic"]
        return [(name, round(left + i * step), round(left + i * step + width), round(top), round(bottom))
                for i, name in enumerate(names)]

    def _dot_geometry(self) -> list[tuple[int, int]]:
        """Centres of the beat-in-bar dots, in a row under the orb."""
        s = self.layout.scale
        n = self.beats_per_bar
        gap = 22 * s
        y = round(self.orb[1] + self.reach + 2 * s)
        return [(round(self.orb[0] + (i - (n - 1) / 2) * gap), y) for i in range(n)]

    def _background(self, title: str, analysis: Analysis) -> np.ndarray:
        L, s = self.layout, self.layout.scale
        img = np.empty((3, L.score_top, L.width), dtype=np.uint8)
        img[:] = np.asarray(BACKGROUND, np.uint8)[:, None, None]
        fill(img, 0, L.header - max(1, round(s)), L.width, L.header, GRID)
        width = draw_text(img, title or "melos sense", 22 * s, 24 * s, 33 * s, TEXT, bold=True)
        facts = [f"{analysis.tempo:.0f} BPM" if analysis.tempo > 0 else "no steady beat",
                 f"key {analysis.key}" if analysis.key else "no key found"]
        lufs = analysis.loudness_lufs
        if lufs is not None and np.isfinite(lufs):
            facts.append(f"{lufs:.1f} LUFS integrated")
        draw_text(img, "  \u00b7  ".join(facts), 15 * s, 24 * s + width + 18 * s, 32 * s, MUTED)
        for i, (name, x0, x1, top, bottom) in enumerate(self.meters):
            fill(img, x0, top, x1, bottom, LANE)
            draw_text(img, name, 14 * s, (x0 + x1) / 2, bottom + 19 * s, TEXT, align="centre")
            full = RELATIVE_FULL if i < 3 else 1.0
            for value in ((0, 1, 2, 3) if i < 3 else (0, 0.5, 1)):  # the scale, left of the meter
                y = bottom - value / full * (bottom - top)
                fill(img, x0 - 4 * s, y - max(1, round(s)) / 2, x0, y + max(1, round(s)) / 2, MUTED)
                text = f"{value}x" if i < 3 else f"{value:g}"
                draw_text(img, text, 11 * s, x0 - 6 * s, y + 4 * s, MUTED, align="right")
        x0, x1 = self.meters[0][1], self.meters[2][2]
        draw_text(img, "each band's energy / its 3 s average (1x = average)", 12 * s, (x0 + x1) / 2,
                  L.panel[0] + 16 * s, MUTED, align="centre")
        draw_text(img, "haptic drive 0-1", 12 * s, (self.meters[3][1] + self.meters[3][2]) / 2, L.panel[0] + 16 * s,
                  MUTED, align="centre")
        dot = _dot(4 * s)
        for x, y in self.dots:
            blend(img, dot, x - dot.shape[1] // 2, y - dot.shape[0] // 2, GRID)
        draw_text(img, "colour: brightness   ring: beat (white: downbeat)   dots: beat in bar", 11 * s, self.orb[0],
                  L.panel[1] - 8 * s, MUTED, align="centre")
        draw_text(img, "now playing", 12 * s, self.now_x, L.panel[0] + 26 * s, MUTED)
        return img

    def _labels(self, analysis: Analysis) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """Each lane's name and legend as a patch (x, y, RGB [3, h, w] float, alpha [h, w]) laid
        over the score's top-left corner."""
        L, s = self.layout, self.layout.scale
        legends = {
            "sections": [("text", "sections")],  # without sections the lane's note says what is missing
            "chords": [("text", "chords (blank: no chord, N.C.)")],
            "waveform": [("text", "waveform   colour = brightness:  dull"), ("gradient", None), ("text", "bright")],
            "beats": [("text", "beats"), ("swatch", "beat", TAP_COLOURS["beat"]), ("text", "beat"),
                      ("swatch", "downbeat", TAP_COLOURS["downbeat"]), ("text", "downbeat + bar number")],
            "taps": [("text", "haptic taps (height = intensity)"), ("swatch", "onset", TAP_COLOURS["onset"]),
                     ("text", "onset"), ("swatch", "beat tap", TAP_COLOURS["beat"]), ("text", "beat"),
                     ("swatch", "downbeat tap", TAP_COLOURS["downbeat"]), ("text", "downbeat")],
            "bed": [("text", "haptic bed"), ("swatch", "amplitude", HAPTIC), ("text", "amplitude"),
                    ("line", "sharpness", FREQUENCY), ("text", "sharpness (0-1)")],
        }
        size, pad, h = 13 * s, round(5 * s), round(18 * s)
        if not analysis.sections:
            del legends["sections"]
        out = []
        for lane, items in legends.items():
            x = round(10 * s)
            y = L.score_top + L.lanes[lane][0] + round(2 * s)
            width = pad + sum(text_mask(item[0], max(7, round(size)))[0].shape[1] + pad if kind == "text"
                              else round(12 * s) + pad if kind != "gradient" else round(60 * s) + pad
                              for kind, *item in items)
            patch = np.empty((3, h, width), dtype=np.uint8)
            patch[:] = np.asarray(BACKGROUND, np.uint8)[:, None, None]
            cursor = pad
            for kind, *item in items:
                if kind == "text":
                    cursor += draw_text(patch, item[0], size, cursor, h / 2 + size * 0.36, TEXT) + pad
                    continue
                w = round(60 * s) if kind == "gradient" else round(12 * s)
                y0, y1 = (h / 2 - s, h / 2 + s) if kind == "line" else (h / 2 - 5 * s, h / 2 + 5 * s)
                if kind == "gradient":
                    ramp = brightness_colour(np.linspace(0, 1, w)).T.astype(np.uint8)  # [3, w]
                    patch[:, round(y0):round(y1), cursor:cursor + w] = ramp[:, None, :]
                else:
                    fill(patch, cursor, y0, cursor + w, y1, item[1])
                    self.swatches[item[0]] = (x + cursor, y + round(y0), x + cursor + w, y + round(y1))
                cursor += w + pad
            alpha = np.where((patch != np.asarray(BACKGROUND, np.uint8)[:, None, None]).any(axis=0), 1.0, 0.8)
            out.append((x, y, patch.astype(np.float32), alpha.astype(np.float32)))
        return out

    def draw(self, canvas: np.ndarray, k: int) -> None:
        """Header and panel of frame k into canvas[:, :score_top]."""
        L, s = self.layout, self.layout.scale
        img = canvas[:, :L.score_top]
        img[:] = self.background
        draw_text(img, f"{_clock(k / L.fps)} / {_clock(self.duration)}", 20 * s, L.width - 24 * s, 33 * s, TEXT,
                  align="right")
        self._draw_orb(img, k)
        self._draw_now(img, k)
        for i, (name, x0, x1, top, bottom) in enumerate(self.meters):
            level = self.bands[i, k] / RELATIVE_FULL if i < 3 else self.haptic[k]
            colour = BAND_COLOURS.get(name, HAPTIC)
            y = bottom - min(level, 1.0) * (bottom - top)
            fill(img, x0, y, x1, bottom, colour)
            fill(img, x0, y, x1, min(y + 3 * s, bottom), tuple(min(255, c + 60) for c in colour))
            if i < 3:
                line = bottom - (bottom - top) / RELATIVE_FULL
                fill(img, x0, line - max(1, s) / 2, x1, line + max(1, s) / 2, TEXT)
                if self.over[i, k]:  # above the scale: a red cap says by how much it is cut
                    fill(img, x0, top - 16 * s, x1, top - 2 * s, CLIP)
                    draw_text(img, "> 3x", 11 * s, (x0 + x1) / 2, top - 5 * s, (255, 255, 255), align="centre",
                              bold=True)
            elif self.taps[k] > level:  # a tap drives above the bed: that part in the taps' colour
                tap = bottom - min(self.taps[k], 1.0) * (bottom - top)
                fill(img, x0, tap, x1, y, TAP_COLOURS["onset"])
                fill(img, x0, tap, x1, min(tap + 3 * s, y), (255, 200, 210))

    def _draw_now(self, img: np.ndarray, k: int) -> None:
        """The chord in large type, then the key, bar and beat, and the short-term loudness."""
        L, s = self.layout, self.layout.scale
        now, x, y = self.now(k), self.now_x, L.panel[0]
        draw_text(img, now["chord"], 46 * s, x, y + 76 * s, TEXT, bold=True)
        draw_text(img, now["key"], 16 * s, x, y + 104 * s, TEXT)
        draw_text(img, f"{now['bar']}   {now['beat']}".rstrip(), 16 * s, x, y + 128 * s, TEXT)
        if now["loudness"]:
            draw_text(img, now["loudness"], 14 * s, x, y + 150 * s, MUTED)

    def _draw_orb(self, img: np.ndarray, k: int) -> None:
        """Glow (loudness), ring (the latest beat, half a second) and disc (flashes on the beat)."""
        L, s = self.layout, self.layout.scale
        fps, r = L.fps, self.radius
        colour = self.colour[k]
        pulse = math.exp(-self.since_beat[k] / (0.12 * fps)) if self.since_beat[k] <= fps * 2 else 0.0
        downbeat = self.since_downbeat[k] == self.since_beat[k] <= k  # the latest beat is a downbeat
        bass = min(max(self.bands[0, k] - 1.0, 0.0), 2.0)
        loud = min(self.loudness[k], 1.0)
        self._orb_layer(img, self.reach, lambda c: self.glow[c, c], colour, 0.15 + 0.3 * loud + 0.25 * pulse)
        age = self.since_beat[k] / (0.5 * fps)  # rings live half a second
        if age < 1:
            ring_radius = r * (1.05 + 1.35 * age)
            half = (5.0 if downbeat else 2.5) * s / 2
            self._orb_layer(img, ring_radius + half + 2,
                            lambda c: np.clip(half + 0.5 - np.abs(self.distance[c, c] - ring_radius), 0, 1),
                            (255, 255, 255) if downbeat else colour, (1 - age) ** 1.5)
        lit = colour * (0.45 + 0.35 * loud)
        lit = lit + (255 - lit) * (0.85 if downbeat else 0.6) * pulse
        disc_radius = r * (1 + 0.15 * pulse + 0.08 * bass)
        self._orb_layer(img, disc_radius + 2, lambda c: _disc(disc_radius, self.distance[c, c]), lit)
        if self.beat_in_bar[k] >= 0:
            dx, dy = self.dots[self.beat_in_bar[k]]
            dot = _dot(6 * s)
            blend(img, dot, dx - dot.shape[1] // 2, dy - dot.shape[0] // 2,
                  (255, 255, 255) if self.beat_in_bar[k] == 0 else colour, 0.5 + 0.5 * pulse)

    def _orb_layer(self, img: np.ndarray, extent: float, alpha_of, colour, scale: float = 1.0) -> None:
        """Blend one layer of the orb, computed only on the square of half-side `extent` around the
        centre that can hold it: `alpha_of(c)` gets the slice of `self.distance` rows and columns."""
        c0 = max(0, self.reach - math.ceil(extent))
        c = slice(c0, min(2 * self.reach, self.reach + math.ceil(extent)))
        blend(img, alpha_of(c), self.orb[0] - self.reach + c0, self.orb[1] - self.reach + c0, colour, scale)

    def draw_score_overlay(self, canvas: np.ndarray) -> None:
        """Dim the past, draw the playhead and the lane names and legends over the score."""
        L, s = self.layout, self.layout.scale
        past = canvas[:, L.score_top:, :L.playhead]
        past[:] = (past >> 1) + (past >> 3)  # x 0.625
        w = max(1, round(s))
        fill(canvas, L.playhead - w, L.score_top, L.playhead + w, L.height, (255, 255, 255))
        for x, y, patch, alpha in self.labels:
            h, width = alpha.shape
            region = canvas[:, y:y + h, x:x + width]
            patch, alpha = patch[:, :region.shape[1], :region.shape[2]], alpha[:region.shape[1], :region.shape[2]]
            region[:] = (region + (patch - region) * alpha + 0.5).astype(np.uint8)


def _latest(times: np.ndarray, fps: int, n_frames: int) -> np.ndarray:
    """Per frame the index of the latest of `times` (sorted) on or before it, -1 before the first."""
    frames = np.floor(np.asarray(times, dtype=np.float64) * fps + 1e-9)
    return np.searchsorted(frames, np.arange(n_frames), side="right") - 1


def _beat_in_bar(analysis: Analysis, fps: int, n_frames: int) -> tuple[np.ndarray, int]:
    """Per frame the latest beat's position in its bar (0 = downbeat; -1 before the first
    downbeat), and the beats in a bar (the commonest count between downbeats, 2-8; 4 if unknown)."""
    beats, downbeats = np.asarray(analysis.beats), np.asarray(analysis.downbeats)
    position = np.full(n_frames, -1)
    if len(beats) == 0 or len(downbeats) == 0:
        return position, 4
    bar_start = np.searchsorted(downbeats, beats + 1e-6) - 1  # the downbeat opening each beat's bar
    index = np.searchsorted(beats, downbeats[np.maximum(bar_start, 0)] - 1e-6)
    in_bar = np.where(bar_start >= 0, np.arange(len(beats)) - index, -1)
    counts = np.diff(np.searchsorted(beats, downbeats - 1e-6))
    counts = counts[(counts >= 2) & (counts <= 8)]
    per_bar = int(np.bincount(counts).argmax()) if len(counts) else 4
    latest = np.searchsorted(np.floor(beats * fps + 1e-9), np.arange(n_frames), side="right") - 1
    position = np.where(latest >= 0, in_bar[np.maximum(latest, 0)], -1)
    return np.where(position < per_bar, position, -1), per_bar


def _clock(t: float, tenths: bool = True) -> str:
    """m:ss.t (or m:ss) of `t` seconds."""
    if tenths:
        tenth = int(math.floor(t * 10 + 1e-6))
        return f"{tenth // 600}:{tenth // 10 % 60:02d}.{tenth % 10}"
    whole = int(round(t))
    return f"{whole // 60}:{whole % 60:02d}"

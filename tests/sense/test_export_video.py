"""The SENSE video: beat pulses on the frame of their click, the score scrolled to the frame's
time, a valid H.264 + AAC file with the audio really in it, and the audio-reactive maths."""

import math

import av
import numpy as np
import pytest
import soundfile as sf

from melos.cli import main
from melos.sense.analysis import Analysis
from melos.sense.export.video import (
    CHORD_COLOURS,
    CLIP,
    FREQUENCY,
    HAPTIC,
    LANE,
    RELATIVE_FULL,
    TAP_COLOURS,
    Layout,
    Panel,
    ScoreStrip,
    _beat_in_bar,
    chord_name,
    write_video,
)
from melos.sense.harmony import ChordSegment
from melos.sense.features import sharpness
from melos.sense.track import Continuous, HapticTrack, Transient
from melos.sense.visual_features import band_energy, frames_since, impulses, peak_hold, relative_energy

SR = 44100
FPS = 30
SIZE = (320, 180)
SECONDS = 4.0
# clicks about every 0.5 s, jittered so they fall at different places inside their frames
CLICKS = np.round(np.arange(0.3, SECONDS - 0.2, 0.5) + np.random.default_rng(3).uniform(-0.12, 0.12, 7), 4)


def click_track() -> np.ndarray:
    """A quiet 220 Hz tone with a loud 5 ms noise burst at each click, stereo [2, N]."""
    t = np.arange(int(SECONDS * SR)) / SR
    x = 0.1 * np.sin(2 * np.pi * 220 * t)
    burst = np.random.default_rng(0).standard_normal(220) * np.exp(-np.arange(220) / 60)
    for click in CLICKS:
        k = round(click * SR)
        x[k:k + 220] += 0.7 * burst
    return np.stack([x, 0.6 * x]).astype(np.float32)


def click_analysis() -> tuple[Analysis, HapticTrack]:
    """An analysis with a beat at every click (every fourth a downbeat) and steady curves, so the
    test sees the renderer, not the beat tracker."""
    hop = 0.01
    n = int(SECONDS / hop) + 1
    centroid = np.full(n, 1500.0)
    analysis = Analysis(sample_rate=SR, duration=SECONDS, hop=hop, rms=np.full(n, 0.1), low_rms=np.full(n, 0.05),
                        centroid=centroid, sharpness=sharpness(centroid), onsets=CLICKS, onset_strength=np.ones(7),
                        beats=CLICKS, downbeats=CLICKS[::4], tempo=120.0)
    times = np.linspace(0, SECONDS, 41)
    track = HapticTrack(SECONDS, [Transient(float(t), 0.8, 0.5, "onset") for t in CLICKS],
                        Continuous(times, np.full(41, 0.3), np.full(41, 0.5)))
    return analysis, track


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The click track's video, decoded: luma per frame [K, H, W], audio [C, N], stream facts."""
    audio = click_track()
    analysis, track = click_analysis()
    path = tmp_path_factory.mktemp("video") / "video.mp4"
    stats = write_video(path, audio, SR, analysis, track, title="clicks", width=SIZE[0], height=SIZE[1], fps=FPS,
                        threads=1)
    with av.open(str(path)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        facts = {"video_codec": video.codec_context.name, "audio_codec": sound.codec_context.name,
                 "size": (video.width, video.height), "rate": video.average_rate, "pix_fmt": video.format.name,
                 "n_video": len(container.streams.video), "n_audio": len(container.streams.audio),
                 "video_seconds": float(video.duration * video.time_base),
                 "audio_seconds": float(sound.duration * sound.time_base),
                 "audio_start": float(sound.start_time * sound.time_base), "audio_rate": sound.rate,
                 "channels": sound.channels}
        frames, pts = [], []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="gray"))
            pts.append(float(frame.pts * frame.time_base))
    with av.open(str(path)) as container:
        decoded = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    return {"luma": np.stack(frames).astype(np.float64), "pts": np.array(pts), "audio": decoded, "input": audio,
            "facts": facts, "stats": stats, "path": path}


def test_each_beat_pulse_lights_the_frame_its_click_sounds_in(rendered):
    layout = Layout.of(*SIZE, FPS, sections=False)
    x, y = layout.orb
    centre = rendered["luma"][:, y - 3:y + 3, x - 3:x + 3].mean(axis=(1, 2))  # [K] brightness of the orb's middle
    jumps = np.diff(centre, prepend=centre[0])
    lit = np.flatnonzero(jumps > 0.5 * jumps.max())
    expected = np.floor(CLICKS * FPS).astype(int)  # the frame whose interval [k/fps, (k+1)/fps) holds the click
    np.testing.assert_array_equal(lit, expected)  # one frame late (or early) fails
    assert np.all(np.abs(rendered["pts"][lit] - CLICKS) < 1 / FPS)


def test_the_score_is_scrolled_to_the_frame_time(rendered):
    """Frame k has time k / fps under the playhead: every beat tick ahead of it sits
    (beat - k / fps) x pixels_per_second to its right (one frame off would shift all by 1.33 px here)."""
    layout = Layout.of(*SIZE, FPS, sections=False)
    y0, y1 = layout.lanes["beats"]
    row = layout.score_top + round(y0 + 0.75 * (y1 - y0))  # crosses beat and downbeat ticks alike
    errors = []
    for k in range(0, len(rendered["luma"]), 5):
        bright = np.flatnonzero(rendered["luma"][k, row] > 100)
        bright = bright[bright > layout.playhead + 3]  # the future side, past the playhead line
        seen = np.array([r.mean() for r in np.split(bright, np.flatnonzero(np.diff(bright) > 1) + 1) if len(r)])
        ahead = (CLICKS - k / FPS) * layout.pixels_per_second
        want = layout.playhead + ahead[(ahead > 6) & (ahead < SIZE[0] - layout.playhead - 4)]
        errors += [seen[np.argmin(np.abs(seen - x))] - x for x in want]
    assert len(errors) > 50 and np.max(np.abs(errors)) < 1.6 and abs(np.mean(errors)) < 0.5, errors


def test_the_file_holds_h264_and_the_audio_in_sync(rendered):
    facts = rendered["facts"]
    assert facts["n_video"] == 1 and facts["n_audio"] == 1
    assert facts["video_codec"] == "h264" and facts["audio_codec"] == "aac"
    assert facts["size"] == SIZE and facts["rate"] == FPS and facts["pix_fmt"] == "yuv420p"
    assert len(rendered["luma"]) == rendered["stats"].n_frames == math.ceil(SECONDS * FPS)
    assert rendered["pts"][0] == 0 and facts["audio_start"] == 0
    assert abs(facts["video_seconds"] - SECONDS) < 1 / FPS and abs(facts["audio_seconds"] - SECONDS) < 1 / FPS
    assert facts["audio_rate"] == SR and facts["channels"] == 2
    original, decoded = rendered["input"], rendered["audio"][:, :rendered["input"].shape[1]]
    lags = np.arange(-200, 201)
    left = original[0, 2000:-2000]
    xcorr = [np.dot(left, decoded[0, 2000 + lag:len(left) + 2000 + lag]) for lag in lags]
    assert lags[int(np.argmax(xcorr))] == 0  # the audio starts at 0 like the video, to the sample
    for c in range(2):
        r = np.corrcoef(original[c], decoded[c])[0, 1]
        assert r > 0.95, r
    assert np.sqrt(np.mean(decoded[1] ** 2)) / np.sqrt(np.mean(decoded[0] ** 2)) == pytest.approx(0.6, rel=0.03)


def test_relative_band_energy_of_a_tone_that_doubles():
    """1 kHz at amplitude 0.5 for 4 s, then 1.0: the mid band's energy is A^2/2 per frame; relative
    to a 3 s (90-frame) trailing mean it reads 1, then 4n / (n + 3j) on the j-th frame after the
    jump (j of the n frames at 4x), 1 once the window holds only those; bass and treble are silent."""
    sr, fps, n = 24000, 30, 90
    t = np.arange(7 * sr) / sr
    x = np.where(t < 4.0, 0.5, 1.0) * np.sin(2 * np.pi * 1000 * t)
    frames = 7 * fps
    energy = band_energy(x, sr, fps, frames)
    assert energy[1, 10:110] == pytest.approx(0.125, rel=0.01)
    assert energy[1, 130:200] == pytest.approx(0.5, rel=0.01)
    relative = relative_energy(energy, fps, seconds=3.0)
    assert relative[1, 5:118] == pytest.approx(1.0, abs=0.02)
    j = np.arange(2, n + 1)  # frame 120 (4.0 s) is the first at 4x: j = 1
    assert relative[1, 119 + j] == pytest.approx(4 * n / (n + 3 * j), rel=0.02)
    quiet = np.r_[5:118, 123:frames - 5]  # the step itself is a broadband click
    assert np.all(relative[[0, 2]][:, quiet] < 0.05)
    steady = relative_energy(band_energy(np.sin(2 * np.pi * 120 * t), sr, fps, frames), fps)  # 4 periods a frame
    assert steady[0, 5:-5] == pytest.approx(1.0, abs=0.02)  # a constant bass tone reads 1 throughout


def test_pulses_flash_on_their_frame_and_decay():
    fps = 10
    assert impulses(np.array([0.1, 0.19, 0.55, 2.0]), fps, 8, np.array([0.3, 0.9, 0.5, 1.0])).tolist() == \
        [0, 0.9, 0, 0, 0, 0.5, 0, 0]  # 0.1 and 0.19 share frame 1 (the larger wins); 2.0 is past the end
    d = math.exp(-1 / (0.2 * fps))
    assert peak_hold(np.array([0, 1.0, 0, 0, 0.5, 0]), fps, 0.2) == pytest.approx([0, 1, d, d * d, 0.5, 0.5 * d])
    assert frames_since(np.array([0.15, 0.42]), fps, 6).tolist() == [7, 0, 1, 2, 0, 1]


def test_beat_dots_count_beats_from_each_downbeat():
    analysis, _ = click_analysis()
    analysis.beats = np.arange(8) * 0.5 + 0.05  # one every 5 frames at 10 fps, 0.05 s into its frame
    analysis.downbeats = analysis.beats[[1, 5]]
    position, per_bar = _beat_in_bar(analysis, 10, 40)
    assert per_bar == 4
    assert position.tolist() == [-1] * 5 + [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 + [0] * 5 + [1] * 5 + [2] * 5


def test_the_score_strip_has_no_seams_between_its_chunks():
    """Windows read from chunks drawn separately equal the same columns drawn in one go."""
    analysis, track = click_analysis()
    mono = click_track().mean(axis=0)
    layout = Layout.of(*SIZE, FPS, sections=False)
    strip = ScoreStrip(layout, mono, SR, SECONDS, analysis, track)
    strip.chunk_width = 50  # a chunk every 1.25 s instead of every STRIP_SCREENS screens
    whole = strip.render(0, round(SECONDS * layout.pixels_per_second) + SIZE[0])
    for k in range(0, round(SECONDS * FPS), 7):
        x0 = round(k / FPS * layout.pixels_per_second)
        np.testing.assert_array_equal(strip.window(k / FPS), whole[:, :, x0:x0 + SIZE[0]])


def test_other_rates_go_to_48khz_and_many_channels_to_mono(tmp_path):
    analysis, track = click_analysis()
    audio = np.random.default_rng(0).standard_normal((6, 23000)).astype(np.float32) * 0.1
    write_video(tmp_path / "v.mp4", audio, 23000, analysis, track, width=160, height=90)
    with av.open(str(tmp_path / "v.mp4")) as container:
        sound = container.streams.audio[0]
        assert (sound.rate, sound.channels) == (48000, 1)
        assert abs(float(sound.duration * sound.time_base) - 1.0) < 1 / FPS


def test_bad_settings_are_one_line_errors_and_leave_no_file(tmp_path):
    audio = click_track()
    analysis, track = click_analysis()
    with pytest.raises(ValueError, match="video size must be even"):
        write_video(tmp_path / "v.mp4", audio, SR, analysis, track, width=321, height=180)
    with pytest.raises(ValueError, match="NaN"):
        write_video(tmp_path / "v.mp4", np.full((2, 100), np.nan), SR, analysis, track)
    assert list(tmp_path.iterdir()) == []


def test_melos_sense_writes_the_video(tmp_path, capsys):
    t = np.arange(int(1.5 * 22050)) / 22050
    clip = tmp_path / "clip.wav"
    sf.write(clip, 0.3 * np.sin(2 * np.pi * 110 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))), 22050)
    out = tmp_path / "out"
    assert main(["sense", str(clip), "--out", str(out), "--formats", "mp4", "--no-progress"]) == 0
    with av.open(str(out / "clip.wav" / "video.mp4")) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height, video.average_rate) == (1280, 720, 30)
        assert sound.rate == 22050 and sound.channels == 1
        assert sum(1 for _ in container.decode(video=0)) == 45


BIG = (1280, 720)


def frame(layout: Layout, panel: Panel, strip: ScoreStrip, k: int) -> np.ndarray:
    """Frame k as `write_video` draws it, [3, H, W] RGB."""
    canvas = np.empty((3, layout.height, layout.width), dtype=np.uint8)
    panel.draw(canvas, k)
    canvas[:, layout.score_top:] = strip.window(k / layout.fps)
    panel.draw_score_overlay(canvas)
    return canvas


def with_harmony(analysis: Analysis) -> Analysis:
    analysis.chords = [ChordSegment(0.0, 1.5, "C:maj"), ChordSegment(1.5, 2.5, "N"),
                       ChordSegment(2.5, SECONDS, "A:min")]
    analysis.key, analysis.key_confidence, analysis.loudness_lufs = "A minor", 0.7, -20.0
    analysis.short_term_lufs = np.linspace(-40.0, -10.0, int(SECONDS * 10))
    return analysis


def parts(audio: np.ndarray, analysis: Analysis, track: HapticTrack, size=BIG) -> tuple[Layout, Panel, ScoreStrip]:
    layout = Layout.of(*size, FPS, sections=bool(analysis.sections))
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    n = math.ceil(SECONDS * FPS)
    return layout, Panel(layout, mono, SR, SECONDS, analysis, track, "clicks", n), \
        ScoreStrip(layout, mono, SR, SECONDS, analysis, track)


def test_the_score_has_more_height_than_the_panel():
    layout = Layout.of(*BIG, FPS, sections=False)
    assert layout.height - layout.score_top > 1.5 * (layout.score_top - layout.header)
    assert {"sections", "chords", "waveform", "beats", "taps", "bed"} <= set(layout.lanes)


def test_the_legends_show_the_tap_colours_the_bed_and_the_beats():
    analysis, track = click_analysis()
    layout, panel, strip = parts(click_track(), analysis, track)
    picture = frame(layout, panel, strip, 45)
    expected = {"onset": TAP_COLOURS["onset"], "beat tap": TAP_COLOURS["beat"], "downbeat tap": TAP_COLOURS["downbeat"],
                "beat": TAP_COLOURS["beat"], "downbeat": TAP_COLOURS["downbeat"], "amplitude": HAPTIC,
                "sharpness": FREQUENCY}
    assert set(panel.swatches) == set(expected)
    for name, colour in expected.items():
        x0, y0, x1, y1 = panel.swatches[name]
        assert x1 - x0 >= 8 and y1 - y0 >= 2 and y0 >= layout.score_top
        patch = picture[:, y0:y1, x0:x1].reshape(3, -1)
        np.testing.assert_array_equal(patch, np.repeat(np.array(colour, np.uint8)[:, None], patch.shape[1], 1), name)
    rows = {name: (layout.score_top + layout.lanes[lane][0], layout.score_top + layout.lanes[lane][1])
            for name, lane in (("onset", "taps"), ("beat", "beats"), ("amplitude", "bed"), ("sharpness", "bed"))}
    for name, (top, bottom) in rows.items():  # each legend on its own lane, at its top
        assert top <= panel.swatches[name][1] < panel.swatches[name][3] <= min(bottom, top + 20), name


def test_a_meter_over_its_scale_says_so():
    """A 60 Hz tone that jumps from 0.02 to 0.5 at 2 s: the bass energy reads 625x its average
    at the jump, so the bass meter shows its red over-range cap there, and not before."""
    t = np.arange(int(SECONDS * SR)) / SR
    audio = np.where(t < 2.0, 0.02, 0.5) * np.sin(2 * np.pi * 60 * t)
    analysis, track = click_analysis()
    layout, panel, strip = parts(audio, analysis, track)
    _, x0, x1, top, _ = panel.meters[0]
    over = np.flatnonzero(panel.over[0])
    relative = relative_energy(band_energy(audio, SR, FPS, panel.over.shape[1]), FPS)[0]
    assert len(over) and over[0] == np.flatnonzero(relative > RELATIVE_FULL)[0] == pytest.approx(60, abs=1)
    red = np.array(CLIP, np.uint8)[:, None]

    def cap(k: int) -> np.ndarray:  # per pixel of the strip above the meter: the over-range red
        return (frame(layout, panel, strip, k)[:, top - 10:top - 2, x0:x1].reshape(3, -1) == red).all(axis=0)

    assert cap(over[0]).mean() > 0.5 and not cap(30).any()
    assert panel.bands[0, over[0]] == RELATIVE_FULL  # the bar itself stops at the top of the scale


def test_the_now_box_and_the_chord_lane_follow_the_chords_bars_and_key():
    analysis, track = click_analysis()
    with_harmony(analysis)
    layout, panel, strip = parts(click_track(), analysis, track)
    assert [chord_name(c) for c in ("C:maj", "A:min", "N", "F#:maj")] == ["C", "Am", "", "F#"]
    bars = np.floor(CLICKS[::4] * FPS).astype(int)  # downbeat frames: bar 1 from the first, bar 2 from the fifth click
    k = bars[1] + 1
    now = panel.now(k)
    beat = np.searchsorted(np.floor(CLICKS * FPS), k, side="right") - 1 - 4  # beats since the second downbeat
    lufs = analysis.short_term_lufs[round((k + 0.5) / FPS * 10)]
    assert now == {"chord": "Am" if k / FPS >= 2.5 else "N.C." if k / FPS >= 1.5 else "C", "key": "key A minor",
                   "bar": "bar 2", "beat": f"beat {beat + 1}", "loudness": f"loudness {lufs:.0f} LUFS (3 s window)"}
    assert panel.now(5)["bar"] == "before bar 1" and panel.now(5)["chord"] == "C"
    assert panel.now(int(1.8 * FPS))["chord"] == "N.C." and panel.now(int(3 * FPS))["chord"] == "Am"
    # the chord lane: the C block in its colour, with its name in light type; nothing where there is no chord
    y0, y1 = layout.lanes["chords"]
    window = strip.window(0.0)  # time 0 under the playhead: C until 1.5 s, no chord 1.5-2.5 s
    c_block = window[:, y0:y1, layout.playhead:layout.playhead + 60].reshape(3, -1)
    colour = np.array(CHORD_COLOURS[0], np.uint8)[:, None]
    assert (c_block == colour).all(axis=0).mean() > 0.6 and (c_block.min(axis=0) > 180).any()  # the "C"
    gap = window[:, y0:y1, layout.playhead + round(1.6 * layout.pixels_per_second):
                 layout.playhead + round(2.4 * layout.pixels_per_second)].reshape(3, -1)
    assert (gap == np.array(LANE, np.uint8)[:, None]).all(axis=0).mean() > 0.95  # the lane (and a grid line)
    assert not any((gap == np.array(c, np.uint8)[:, None]).all(axis=0).any() for c in CHORD_COLOURS)


def test_bar_numbers_stand_by_the_downbeats_and_missing_sections_are_explained():
    analysis, track = click_analysis()
    layout, panel, strip = parts(click_track(), analysis, track)
    window = strip.window(0.0)
    y0, y1 = layout.lanes["beats"]
    lane = np.array(LANE, np.uint8)[:, None, None]
    for downbeat in CLICKS[::4]:
        x = layout.playhead + round(downbeat * layout.pixels_per_second)
        number = window[:, y0:y0 + 12, x + 3:x + 16]
        assert (np.abs(number.astype(int) - lane).sum(axis=0) > 60).sum() > 5, downbeat  # a digit drawn there
    y0, y1 = layout.lanes["sections"]
    note = window[:, y0:y1, :layout.width // 2]
    assert (np.abs(note.astype(int) - lane).sum(axis=0) > 60).sum() > 200  # the --model note's text

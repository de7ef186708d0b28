"""The SENSE video: beat pulses on the frame of their click, the score scrolled to the frame's
time, a valid H.264 + AAC file with the audio really in it, and the audio-reactive maths."""

import math

import av
import numpy as np
import pytest
import soundfile as sf

from melos.cli import main
from melos.sense.analysis import Analysis
from melos.sense.export.video import Layout, ScoreStrip, _beat_in_bar, write_video
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

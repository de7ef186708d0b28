"""sense.html without a browser: nothing external, and everything embedded decodes back to the
analysis, the haptic track and the audio it was made from."""

import base64
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
import soxr
from PIL import Image

from melos.cli import main
from melos.sense.analysis import Analysis, Section, analyze
from melos.sense.export import html as html_module
from melos.sense.export.html import N_MELS, OPUS_RATE, SPECTROGRAM_STEP, encode_audio, page_data, write_html
from melos.sense.harmony import ChordSegment
from melos.sense.mapping import to_track
from melos.sense.track import HapticTrack

SR = 22050
NASTY_TAG = "</script><b>&amp;"


def clicks(seconds: float = 3.0, sr: int = SR) -> np.ndarray:
    """Stereo [2, N]: noise clicks every 0.25 s over a 70 Hz tone, the right channel quieter."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.2 * np.sin(2 * np.pi * 70 * t)
    for onset in np.arange(0.25, seconds, 0.25):
        k = int(onset * sr)
        x[k:k + 200] += 0.8 * np.exp(-np.arange(200) / 30) * np.random.default_rng(k).standard_normal(200)
    return np.stack([x, 0.6 * x]).astype(np.float32)


def embedded(text: str) -> tuple[dict, bytes]:
    """The page's data and audio bytes, read the way the page reads them."""
    data = re.search(r'<script id="sense-data" type="application/json">(.*?)</script>', text, re.S).group(1)
    audio = re.search(r'<script id="sense-audio" type="text/plain"[^>]*>(.*?)</script>', text, re.S).group(1)
    return json.loads(data), base64.b64decode(audio.strip())


def decode_curve(c: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(c["bytes"]), dtype=np.uint8) / 255 * c["scale"]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    audio = clicks()
    analysis = analyze(audio, SR)
    analysis.sections = [Section(0.0, 1.5, {"rock": 0.8, NASTY_TAG: 0.6}, 0.9, 1.0), Section(1.5, 3.0, {}, 1.1, 1.0)]
    track = to_track(analysis)
    path = write_html(tmp_path_factory.mktemp("page") / "sense.html", audio, SR, analysis, track,
                      title="café <b>clip</b>")
    return path.read_text(encoding="ascii"), audio, analysis, track


def test_the_page_fetches_nothing(page):
    text = page[0]
    assert re.findall(r"(?i)\b(?:https?|ftp|file):", text) == []
    markup = re.sub(r"(?s)(<script\b[^>]*>).*?</script>", r"\1", text)
    assert re.findall(r"(?i)<[^>]*\b(?:src|href|action)\s*=", markup) == []  # no element refers to anything
    assigned = re.findall(r"\.(?:src|href)\s*=\s*([^;]+);", text)  # in the script: only what is embedded
    assert assigned and all(a.startswith(("tile.png", "URL.createObjectURL(new Blob(")) for a in assigned)
    assert "<link" not in text and "@import" not in text and "url(" not in text and "fetch(" not in text
    assert "<title>caf&#233; &lt;b&gt;clip&lt;/b&gt;</title>" in text  # escaped, the page kept ASCII
    assert NASTY_TAG not in text  # a tag cannot close the data's <script> early


def test_events_and_sections_decode_to_the_track_and_analysis(page):
    data, _ = embedded(page[0])
    _, _, analysis, track = page
    taps = data["transients"]
    assert len(taps["time"]) == len(track.transients) > 5
    np.testing.assert_allclose(taps["time"], [t.time for t in track.transients], atol=5e-6)
    np.testing.assert_allclose(taps["intensity"], [t.intensity for t in track.transients], atol=5e-4)
    np.testing.assert_allclose(taps["sharpness"], [t.sharpness for t in track.transients], atol=5e-4)
    assert taps["layer"] == [t.layer for t in track.transients]
    for name in ("beats", "downbeats"):
        np.testing.assert_allclose(data[name], getattr(analysis, name), atol=5e-6)
    np.testing.assert_allclose(data["onsets"]["time"], analysis.onsets, atol=5e-6)
    np.testing.assert_allclose(data["onsets"]["strength"], analysis.onset_strength, atol=5e-4)
    assert data["duration"] == pytest.approx(track.duration, abs=1e-5) and data["tempo"] == round(analysis.tempo, 2)
    assert data["sections"][0]["tags"] == {"rock": 0.8, NASTY_TAG: 0.6}
    assert [(s["start"], s["end"], s["intensity"]) for s in data["sections"]] == [(0.0, 1.5, 0.9), (1.5, 3.0, 1.1)]


def test_curves_decode_to_the_analysis_within_one_level(page):
    data, _ = embedded(page[0])
    _, audio, analysis, track = page
    amplitude, frequency = track.continuous.at(analysis.times)
    expected = {"sharpness": analysis.sharpness, "bed:amplitude": amplitude, "bed:frequency": frequency,
                **{f"stem:{k}": v for k, v in analysis.stems.items()}}
    assert set(data["curves"]) == set(expected) and "stem:percussive" in expected
    for name, values in expected.items():
        c = data["curves"][name]
        assert c["step"] == analysis.hop and c["scale"] == pytest.approx(values.max(), rel=1e-6)
        np.testing.assert_allclose(decode_curve(c), values, atol=c["scale"] / 510 + 1e-9, err_msg=name)

    w = data["waveform"]  # per hop, min and max of the mono mix
    mono = audio.mean(axis=0)
    n = round(w["step"] * SR)
    lo = np.frombuffer(base64.b64decode(w["min"]), dtype=np.int8) / 127 * w["peak"]
    hi = np.frombuffer(base64.b64decode(w["max"]), dtype=np.int8) / 127 * w["peak"]
    assert len(lo) == len(hi) == -(-len(mono) // n) and w["peak"] == pytest.approx(np.abs(mono).max(), rel=1e-6)
    for k in (0, 25, 101, len(lo) - 2):
        block = mono[k * n:(k + 1) * n]
        assert lo[k] == pytest.approx(block.min(), abs=w["peak"] / 254 + 1e-7)
        assert hi[k] == pytest.approx(block.max(), abs=w["peak"] / 254 + 1e-7)


def tiles(level: dict) -> np.ndarray:
    """A spectrogram level's tiles side by side, [N_MELS, columns] of palette indices (= levels)."""
    images = [Image.open(io.BytesIO(base64.b64decode(t["png"].split(",", 1)[1]))) for t in level["tiles"]]
    assert [t["column"] for t in level["tiles"]] == list(np.cumsum([0] + [i.width for i in images[:-1]]))
    return np.concatenate([np.asarray(i) for i in images], axis=1)


def test_the_spectrogram_levels_span_the_track_and_show_the_clicks(monkeypatch):
    monkeypatch.setattr(html_module, "MAX_COLUMNS", 40)  # a coarser level after the finest ...
    monkeypatch.setattr(html_module, "TILE_COLUMNS", 64)  # ... and several tiles per level
    spec = html_module._spectrogram(clicks().mean(axis=0), SR)
    assert [level["step"] for level in spec["levels"]] == pytest.approx([SPECTROGRAM_STEP, 4 * SPECTROGRAM_STEP],
                                                                          abs=1e-4)
    assert len(spec["levels"][0]["tiles"]) == 3 and len(spec["levels"][1]["tiles"]) == 1
    for level in spec["levels"]:
        image = tiles(level)
        assert image.shape[0] == N_MELS
        assert image.shape[1] * level["step"] == pytest.approx(3.0, abs=1.01 * level["step"])
        if level["step"] < 0.05:  # the finest level resolves each click (the coarse one pools 4 columns)
            top = image[: N_MELS // 2].astype(float).mean(axis=0)  # the high half
            loud = np.arange(image.shape[1])[top > top.mean() + top.std()] * level["step"]
            assert len(loud) and np.min(np.abs(loud[:, None] - np.arange(0.25, 3.0, 0.25)), axis=1).max() < 0.06
    assert len(spec["palette"]) == 9 and spec["db_range"] == 80


def test_frequency_ticks_sit_on_the_rows_that_light_up_for_those_tones():
    """A 500 Hz and then a 5 kHz tone: each lights the row its tick says (within one mel row)."""
    t = np.arange(SR) / SR
    spec = html_module._spectrogram(np.r_[0.5 * np.sin(2 * np.pi * 500 * t), 0.5 * np.sin(2 * np.pi * 5000 * t)], SR)
    image = tiles(spec["levels"][0]).astype(float)[::-1]  # row 0 at the bottom
    ticks = dict(spec["ticks"])
    assert list(ticks) == [100, 500, 1000, 2000, 5000, 10000]
    for hz, columns in ((500, slice(10, 40)), (5000, slice(60, 90))):
        row = np.argmax(image[:, columns].mean(axis=1))
        assert abs((row + 0.5) / N_MELS - ticks[hz]) <= 1 / N_MELS, (hz, row)


def test_chords_key_and_loudness_are_in_the_page_data(page):
    data, _ = embedded(page[0])
    analysis = page[2]
    assert data["chords"]["label"] == [c.label for c in analysis.chords] and len(analysis.chords) >= 1
    np.testing.assert_allclose(data["chords"]["start"], [c.start for c in analysis.chords], atol=5e-6)
    np.testing.assert_allclose(data["chords"]["end"], [c.end for c in analysis.chords], atol=5e-6)
    assert data["key"] == analysis.key and data["key_confidence"] == pytest.approx(analysis.key_confidence, abs=1e-3)
    loud = data["loudness"]
    assert loud["integrated"] == pytest.approx(analysis.loudness_lufs, abs=0.01) and loud["rate"] == 10.0
    np.testing.assert_allclose(loud["short_term"], analysis.short_term_lufs, atol=0.05)
    made = Analysis(24000, 1.0, 0.01, *[np.zeros(100)] * 4, *[np.zeros(0)] * 4, tempo=0.0,
                    chords=[ChordSegment(0.0, 1.0, "A:min")], loudness_lufs=float("-inf"))
    data = page_data(np.zeros(24000), 24000, made, HapticTrack(1.0))
    assert data["chords"] == {"start": [0.0], "end": [1.0], "label": ["A:min"]}
    assert data["loudness"]["integrated"] is None  # silence: -inf is not JSON


def test_the_audio_is_opus_and_starts_with_the_original_sample(page):
    _, audio_bytes = embedded(page[0])
    _, audio, _, _ = page
    decoded, rate = sf.read(io.BytesIO(audio_bytes), always_2d=True)  # [N, 2]
    assert sf.info(io.BytesIO(audio_bytes)).subtype == "OPUS" and rate == OPUS_RATE and decoded.shape[1] == 2
    assert len(decoded) / rate == pytest.approx(audio.shape[1] / SR, abs=1e-3)
    reference = soxr.resample(audio.T.astype(np.float64), SR, OPUS_RATE)  # [N, 2]
    lags = np.arange(-50, 51)
    corr = [np.dot(decoded[100 + lag:40000 + lag, 0], reference[100:40000, 0]) for lag in lags]
    assert lags[int(np.argmax(corr))] == 0  # the page's clock is the analysis's clock
    assert np.std(decoded[:, 1]) / np.std(decoded[:, 0]) == pytest.approx(0.6, abs=0.05)  # stereo kept


def test_other_channel_counts_are_mixed_to_mono():
    rng = np.random.default_rng(0)
    for audio in (rng.uniform(-0.5, 0.5, 24000), rng.uniform(-0.5, 0.5, (3, 24000))):
        decoded, rate = sf.read(io.BytesIO(encode_audio(audio, 24000)), always_2d=True)
        assert decoded.shape == (48000, 1) and rate == OPUS_RATE


def test_silence_with_no_haptics_makes_an_empty_dark_page():
    n = 100  # frames of 10 ms
    analysis = Analysis(24000, 1.0, 0.01, *[np.zeros(n)] * 4, *[np.zeros(0)] * 4, tempo=0.0)
    data = page_data(np.zeros((2, 24000)), 24000, analysis, HapticTrack(1.0))
    assert data["transients"]["time"] == [] and data["beats"] == [] and data["sections"] == []
    assert all(not decode_curve(c).any() for c in data["curves"].values())
    assert all(tiles(level).max() == 0 for level in data["spectrogram"]["levels"])  # palette index 0: black


def test_sense_command_writes_the_page(tmp_path):
    sf.write(tmp_path / "clip.wav", clicks(2.0).T, SR)
    out = tmp_path / "out"
    assert main(["sense", str(tmp_path / "clip.wav"), "--out", str(out), "--formats", "html", "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "clip.wav").iterdir()) == ["analysis.json", "sense.html"]
    data, audio_bytes = embedded((out / "clip.wav" / "sense.html").read_text(encoding="ascii"))
    analysis = json.loads((out / "clip.wav" / "analysis.json").read_text())
    assert data["title"] == "clip.wav" and data["onsets"]["time"] == analysis["onsets"]
    assert data["beats"] == analysis["beats"] and len(data["transients"]["time"]) >= 7
    assert sf.info(io.BytesIO(audio_bytes)).duration == pytest.approx(2.0, abs=1e-3)

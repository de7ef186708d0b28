"""sense.html in a real headless Chromium (Debian's, driven by playwright): the playhead on the
audio clock, click to seek, vibration patterns against the taps, the notice where there is no
vibration, and live mode from a WebSocket."""

import asyncio
import base64
import io
import json
import shutil
import threading
import time

import numpy as np
import pytest
import soundfile as sf

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if shutil.which("chromium") is None:
    pytest.skip("no chromium on PATH (Debian: apt install chromium)", allow_module_level=True)

from websockets.asyncio.server import serve  # noqa: E402

from melos.sense.analysis import Analysis  # noqa: E402
from melos.sense.export.html import OPUS_RATE, write_html  # noqa: E402
from melos.sense.harmony import ChordSegment  # noqa: E402
from melos.sense.track import Continuous, HapticTrack, Transient  # noqa: E402

SR = 24000
SECONDS = 6.0
TAP_STEP = 0.04  # s between taps: 50 in the page's 2 s horizon, more than one pattern (99 entries) holds
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
RECORD_VIBRATE = """window.__vibrate = [];
navigator.vibrate = (pattern) => {
  const audio = document.getElementById("audio");
  window.__vibrate.push({t: audio ? audio.currentTime : null, pattern: [].concat(pattern)});
  return true;
};"""
NO_VIBRATE = "delete Navigator.prototype.vibrate;"
SAMPLE = """() => new Promise((done) => requestAnimationFrame(() => {
  const head = document.getElementById("playhead").getBoundingClientRect();
  const lane = document.getElementById("canvas").getBoundingClientRect(), plot = document.getElementById("plot");
  done({x: head.left + head.width / 2 - lane.left, width: lane.width, t0: +plot.dataset.t0, t1: +plot.dataset.t1,
        now: document.getElementById("audio").currentTime});
}))"""


def clip() -> np.ndarray:
    """Mono [1, N]: a 1 kHz burst every 0.5 s over a quiet 110 Hz tone."""
    t = np.arange(int(SECONDS * SR)) / SR
    x = 0.1 * np.sin(2 * np.pi * 110 * t)
    for onset in np.arange(0.5, SECONDS, 0.5):
        k = int(onset * SR)
        x[k:k + 240] += 0.7 * np.sin(2 * np.pi * 1000 * t[:240]) * np.exp(-np.arange(240) / 80)
    return x[None].astype(np.float32)


def made_up_analysis() -> Analysis:
    """An analysis of `clip` written down rather than computed (these tests are about the page)."""
    hop, n = 0.01, int(SECONDS / 0.01)
    t = np.arange(n) * hop
    pulse = np.exp(-((t + 0.25) % 0.5) / 0.05)  # a decay after each burst
    beats = np.arange(0.5, SECONDS, 0.5)
    return Analysis(SR, SECONDS, hop, rms=0.07 + 0.3 * pulse, low_rms=np.full(n, 0.07), centroid=1000 + 500 * pulse,
                    sharpness=0.4 + 0.3 * pulse, onsets=beats, onset_strength=np.ones(len(beats)), beats=beats,
                    downbeats=beats[::4], tempo=120.0, stems={"harmonic": np.full(n, 0.07), "percussive": 0.3 * pulse},
                    chords=CHORDS, key="A minor", key_confidence=0.8, loudness_lufs=-17.25,
                    short_term_lufs=np.linspace(-40, -10, int(SECONDS * 10)))


CHORDS = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "A:min"), ChordSegment(4.0, SECONDS, "N")]
RECORD_CANVAS = RECORD_VIBRATE + """
window.__text = [];
window.__images = [];
const fillText = CanvasRenderingContext2D.prototype.fillText;
CanvasRenderingContext2D.prototype.fillText = function (text, x, y) {
  window.__text.push({text: String(text), x, y});
  return fillText.apply(this, arguments);
};
const drawImage = CanvasRenderingContext2D.prototype.drawImage;
CanvasRenderingContext2D.prototype.drawImage = function (image, ...args) {
  window.__images.push({width: image.naturalWidth, args});
  return drawImage.apply(this, [image, ...args]);
};"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The page of `clip` with dense taps (every TAP_STEP s, cycling layers and intensities)."""
    audio = clip()
    analysis = made_up_analysis()
    times = np.arange(0.1, SECONDS - 0.05, TAP_STEP)
    layers = ["onset", "beat", "downbeat"]
    taps = [Transient(float(t), float(0.2 + 0.8 * (k % 5) / 4), 0.5, layers[k % 3]) for k, t in enumerate(times)]
    bed = Continuous(analysis.times, 0.5 * analysis.stems["percussive"], analysis.sharpness)
    track = HapticTrack(analysis.duration, taps, bed)
    path = write_html(tmp_path_factory.mktemp("site") / "sense.html", audio, SR, analysis, track, title="clicks")
    return path, audio, track


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def close_pages(browser):
    """Each test's pages closed after it, so no page left playing slows the next."""
    yield
    for context in browser.contexts:
        context.close()


def open_page(browser, url: str, init_script: str = RECORD_VIBRATE):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(init_script)
    page.goto(url)
    page.errors = errors
    return page


def loaded(browser, site, init_script: str = RECORD_VIBRATE):
    page = open_page(browser, site[0].as_uri(), init_script)
    page.wait_for_function("document.getElementById('audio').readyState >= 1")
    return page


def felt(calls: list[dict]) -> np.ndarray:
    """Audio times of the pulses the vibrator played: each call is [0, pause, pulse, pause, pulse, ...]
    from its audio time and cancels what is left of the call before it (navigator.vibrate's rule)."""
    out = []
    for call, after in zip(calls, calls[1:] + [{"t": np.inf}]):
        cursor = 0
        for i, ms in enumerate(call["pattern"]):
            start = call["t"] + cursor / 1000
            if i % 2 == 0 and ms > 0 and start < after["t"]:
                out.append(start)
            cursor += ms
    return np.array(out)


def test_the_playhead_sits_on_the_audio_clock_and_a_click_seeks(browser, site, tmp_path):
    page = loaded(browser, site)
    page.evaluate("audio => { audio.currentTime = 1.0; return audio.play(); }", page.query_selector("#audio"))
    samples = []
    for _ in range(5):
        time.sleep(0.3)
        samples.append(page.evaluate(SAMPLE))
    assert samples[-1]["now"] - samples[0]["now"] > 0.6  # it plays
    for s in samples:
        assert (s["t0"], s["t1"]) == (0, pytest.approx(SECONDS, abs=1e-4))
        pixel = (s["t1"] - s["t0"]) / s["width"]
        shown = s["t0"] + s["x"] / s["width"] * (s["t1"] - s["t0"])
        assert abs(shown - s["now"]) <= 1 / 60 + pixel, s  # within one frame (60 Hz) and one pixel

    page.evaluate("document.getElementById('audio').pause()")
    box = page.query_selector("#canvas").bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 100)
    s = page.evaluate(SAMPLE)
    assert s["now"] == pytest.approx(0.75 * SECONDS, abs=SECONDS / box["width"])
    assert s["t0"] + s["x"] / s["width"] * s["t1"] == pytest.approx(s["now"], abs=SECONDS / box["width"])
    page.screenshot(path=tmp_path / "page.png")
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG" and page.errors == []


def test_vibration_patterns_follow_the_taps_after_the_playhead(browser, site):
    _, _, track = site
    page = loaded(browser, site)
    page.evaluate("audio => { audio.currentTime = 1.0; return audio.play(); }", page.query_selector("#audio"))
    time.sleep(2.8)
    stop = page.evaluate("audio => { audio.pause(); return audio.currentTime; }", page.query_selector("#audio"))
    calls = page.evaluate("window.__vibrate")
    patterns = [c for c in calls if c["pattern"] != [0]]
    assert patterns and all(len(c["pattern"]) <= 99 for c in patterns)
    assert len(patterns) >= 2 and max(len(c["pattern"]) for c in patterns) == 99  # one pattern was full
    assert calls[-1]["pattern"] == [0]  # pausing cancels what is left
    starts, taps = felt(calls), np.array([t.time for t in track.transients])
    nearest = np.abs(starts[:, None] - taps[None]).argmin(axis=1)
    assert np.abs(starts - taps[nearest]).max() <= 0.0011  # rounding to whole ms
    assert len(set(nearest)) == len(nearest), "a tap was felt twice"
    played = np.flatnonzero((taps >= patterns[0]["t"]) & (taps < stop - 0.05))
    assert len(played) > 49 and set(played) <= set(nearest), "a tap after the playhead was never felt"
    assert page.errors == []


def test_chrome_decodes_the_embedded_audio_from_its_first_sample(browser, site):
    """The page's clock is the analysis's only if the browser drops Ogg Opus's pre-skip (6.5 ms)
    as libsndfile does (test_export_html checks libsndfile's decoding against the original)."""
    page = loaded(browser, site)
    head = page.evaluate("""async () => {
      const text = document.getElementById("sense-audio").textContent.trim(), raw = atob(text);
      const data = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) data[i] = raw.charCodeAt(i);
      const decoded = await new OfflineAudioContext(1, 48000, 48000).decodeAudioData(data.buffer);
      return Array.from(decoded.getChannelData(0).slice(0, 24000));
    }""")
    html = site[0].read_text()
    encoded = html.split('<script id="sense-audio" type="text/plain" data-type="audio/ogg; codecs=opus">')[1]
    reference, rate = sf.read(io.BytesIO(base64.b64decode(encoded.split("</script>")[0])), frames=24000)
    lags = np.arange(-400, 401)
    corr = [np.dot(np.asarray(head)[500 + lag:23000 + lag], reference[500:23000]) for lag in lags]
    assert rate == OPUS_RATE and lags[int(np.argmax(corr))] == 0


def test_a_browser_without_vibration_says_so(browser, site):
    page = loaded(browser, site, NO_VIBRATE)
    note = page.query_selector("#vibrate-note")
    assert note.is_visible() and "cannot vibrate" in note.inner_text()
    page = loaded(browser, site)
    assert "cannot vibrate" not in page.query_selector("#vibrate-note").inner_text()


EVENTS = [
    {"type": "continuous", "time": 0.0, "amplitude": 0.2, "frequency": 0.5},
    {"type": "beat", "time": 0.05},
    {"type": "continuous", "time": 0.1, "amplitude": 0.6, "frequency": 0.4},
    {"type": "transient", "time": 0.12, "intensity": 0.8, "sharpness": 0.7, "layer": "onset"},
    {"type": "lyrics", "time": 0.13, "text": "ignored"},
    {"type": "continuous", "time": 0.2, "amplitude": 0.3, "frequency": 0.6},
]


def test_live_mode_draws_and_vibrates_from_a_websocket(browser, site):
    loop, ready, stop = asyncio.new_event_loop(), threading.Event(), None
    port = {}

    async def stream(connection):
        for event in EVENTS:
            await connection.send(json.dumps(event))
            await asyncio.sleep(0.02)
        await connection.wait_closed()

    async def run():
        nonlocal stop
        stop = asyncio.Event()
        async with serve(stream, "127.0.0.1", 0) as server:
            port["port"] = server.sockets[0].getsockname()[1]
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        page = open_page(browser, f"{site[0].as_uri()}?live=ws://127.0.0.1:{port['port']}")
        page.wait_for_function("document.getElementById('live-count').textContent === '5'", timeout=5000)
        assert page.query_selector("#live-status").inner_text().startswith("connected")
        assert page.query_selector("#live-view").is_visible() and not page.query_selector("#file-view").is_visible()
        assert page.evaluate("window.__vibrate.map(c => c.pattern)") == [[34]]  # 10 + 30 * 0.8 ms, at once
        time.sleep(0.1)
        assert page.errors == []
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
    page.wait_for_function("document.getElementById('live-status').textContent.startsWith('closed')", timeout=5000)


def test_every_lane_says_its_scale_and_the_chords_bars_and_key_are_drawn(browser, site):
    page = loaded(browser, site, RECORD_CANVAS)
    page.wait_for_function("window.__images.length > 0")  # the spectrogram's tiles have loaded and drawn
    page.evaluate("() => new Promise((done) => requestAnimationFrame(done))")
    ticks = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('#labels [data-lane]')].map(
        (d) => [d.dataset.lane, [...d.querySelectorAll('.tick')].map((t) => t.textContent)]))""")
    assert ticks["spectrogram"] == ["100", "500", "1k", "2k", "5k", "10k"]
    assert ticks["waveform"][1] == "0" and ticks["waveform"][0].startswith("+")
    assert ticks["onsets"] == ["1", "0"] and ticks["taps"] == ["1", "0.5", "0"] and ticks["bed"] == ["1", "0.5", "0"]
    assert ticks["loudness"] == ["0", "-30", "-60"] and ticks["stem"][1] == "0"
    labels = page.query_selector("#labels").inner_text()
    for words in ("strength 0-1", "intensity 0-1", "RMS", "short-term LUFS", "integrated -17.3", "Hz", "key A minor",
                  "0 dB", "-80"):
        assert words in labels, words
    assert "key A minor (confidence 0.80)" in page.query_selector("#meta").inner_text()
    assert "-17.3 LUFS integrated" in page.query_selector("#meta").inner_text()
    drawn = [t["text"] for t in page.evaluate("window.__text")]
    assert "C" in drawn and "Am" in drawn  # chord names (the "N" stretch has none)
    assert {"1", "2", "3"} <= set(drawn)  # bar numbers at the downbeats 0.5, 2.5 and 4.5 s
    assert any("--model" in t for t in drawn)  # where the sections would be
    # the spectrogram is drawn from the finest level's tiles, each source column at most a few pixels wide
    last = page.evaluate("window.__images")[-1]  # one tile: [sx, sy, sw, sh, dx, dy, dw, dh]
    assert page.evaluate("+document.getElementById('plot').dataset.spectrogramStep") == pytest.approx(0.02, abs=1e-3)
    assert last["width"] == pytest.approx(SECONDS / 0.02, abs=2)  # the finest level: a column per 20 ms ...
    assert last["args"][2] == pytest.approx(SECONDS / 0.02, abs=2)  # ... all of them drawn for the whole track
    assert page.errors == []


def test_the_spectrogram_level_follows_the_zoom_and_dense_taps_stay_apart(browser, site):
    page = loaded(browser, site)
    levels = "[{step: 0.02}, {step: 0.08}, {step: 0.32}]"
    assert page.evaluate(f"[0.001, 0.02, 0.05, 0.1, 1].map((s) => pickLevel({levels}, s).step)") == \
        [0.02, 0.02, 0.02, 0.08, 0.32]
    rects = page.evaluate("""() => {  // 1000 taps on 100 px: one bar per column, the tallest of its taps
      const rects = [], ctx = {fillRect: (x, y, w, h) => rects.push([x, y, w, h])};
      const times = Array.from({length: 1000}, (_, i) => i / 1000);
      const view = {t0: 0, t1: 1, w: 100, x: (t) => t * 100};
      drawStems(ctx, view, 0, 53, times, (i) => (i % 10) / 9, () => "#fff");
      return rects;
    }""")
    assert len(rects) == 100 and sorted(r[0] for r in rects) == list(range(100))
    assert all(r[2] == 1 and r[3] == pytest.approx(50) for r in rects)  # each column holds a tap of intensity 1

"""The README's picture of the SENSE page: `melos sense --formats html` on the first 60 s of a
Wesnoth track, opened in headless Chromium, seeked and played a little, then photographed.

    .venv/bin/python benchmarks/sense_page_screenshot.py [--track OGG] [--seconds 60] [--out PNG]

Prints the page's size and where its bytes go (audio, spectrogram, the rest).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import soundfile as sf

from melos.cli import main
from melos.utils.atomic import atomic_file

WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
HEIGHT = 780  # px: the page with two stems and no sections is ~740 px tall at 1280 px wide


def sizes(page: Path) -> dict[str, float]:
    """MB of the page, of its embedded audio (base64) and of its spectrogram image (base64)."""
    text = page.read_text()
    audio = re.search(r'<script id="sense-audio"[^>]*>(.*?)</script>', text, re.S).group(1).strip()
    data = json.loads(re.search(r'<script id="sense-data"[^>]*>(.*?)</script>', text, re.S).group(1))
    return {"page": len(text) / 1e6, "audio (base64)": len(audio) / 1e6,
            "audio (Opus bytes)": len(base64.b64decode(audio)) / 1e6,
            "spectrogram (base64, all levels)": sum(len(tile["png"]) for level in data["spectrogram"]["levels"]
                                                    for tile in level["tiles"]) / 1e6}


def screenshot(page: Path, out: Path, at: float, zoom: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        tab = browser.new_page(viewport={"width": 1280, "height": HEIGHT}, device_scale_factor=1)
        errors = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(page.as_uri())
        tab.wait_for_function("document.getElementById('audio').readyState >= 1")
        tab.mouse.click(5, 5)  # the tap browsers want before they vibrate; hides that hint
        tab.select_option("#zoom", zoom)
        tab.evaluate(f"audio => {{ audio.currentTime = {at}; return audio.play(); }}", tab.query_selector("#audio"))
        time.sleep(0.5)
        tab.evaluate("audio => audio.pause()", tab.query_selector("#audio"))
        time.sleep(0.2)
        with atomic_file(out) as tmp:
            tab.screenshot(path=str(tmp), type="png")
        browser.close()
    if errors:
        raise RuntimeError(f"the page raised: {errors}")


def run(track: Path, seconds: float, out: Path, at: float, zoom: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        audio, rate = sf.read(track, frames=int(seconds * sf.info(track).samplerate), always_2d=True)
        whole = len(audio) == sf.info(track).frames
        clip = Path(tmp) / (f"{track.stem}.wav" if whole else f"{track.stem} (first {seconds:g} s).wav")
        sf.write(clip, audio, rate)
        start = time.perf_counter()
        assert main(["sense", str(clip), "--out", f"{tmp}/out", "--formats", "html", "--no-progress"]) == 0
        print(f"melos sense --formats html on {len(audio) / rate:.1f} s: {time.perf_counter() - start:.1f} s")
        page = Path(tmp) / "out" / clip.name / "sense.html"
        for name, mb in sizes(page).items():
            print(f"{name}: {mb:.2f} MB")
        screenshot(page, out, at, zoom)
    print(f"wrote {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--track", type=Path, default=WESNOTH)
    parser.add_argument("--seconds", type=float, default=60.0, help="how much of the track (from its start)")
    parser.add_argument("--at", type=float, default=21.0, help="where the playhead stands (s)")
    parser.add_argument("--zoom", default="30", choices=["0", "30", "10"], help="the page's view: 0 = whole track")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/sense_page.png"))
    args = parser.parse_args()
    run(args.track, args.seconds, args.out, args.at, args.zoom)

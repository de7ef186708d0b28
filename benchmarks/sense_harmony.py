"""Chords, key and loudness of `melos.sense`: accuracy on generated progressions, LUFS of the
BS.1770 reference sines, and analysis time per minute of audio.

    .venv/bin/python benchmarks/sense_harmony.py --n 12 [--track some.ogg]
"""

import argparse
import time

import mir_eval
import numpy as np

from melos.audio import load
from melos.data.synth.chord_progression import chord_progressions
from melos.sense.analysis import analyze
from melos.sense.harmony import analyze_harmony
from melos.sense.loudness import integrated_loudness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="generated progressions (every 2nd with drums)")
    parser.add_argument("--track", default="/usr/share/games/wesnoth/1.16/data/core/music/loyalists.ogg")
    args = parser.parse_args()
    majmin, root, keys = [], [], 0
    for p in chord_progressions(args.n, seed=1000, n_bars=8):
        h = analyze_harmony(p.audio, p.sample_rate)
        s = mir_eval.chord.evaluate(p.intervals, p.labels, np.array([[c.start, c.end] for c in h.chords]),
                                    [c.label for c in h.chords])
        majmin.append(s["majmin"]), root.append(s["root"])
        keys += h.key == p.key
    print(f"chords over {args.n} progressions: majmin {np.mean(majmin):.3f}, root {np.mean(root):.3f}; "
          f"key accuracy {keys / args.n:.3f}")
    t = np.arange(10 * 48000) / 48000
    sine = 0.1 * np.sin(2 * np.pi * 997 * t)
    print(f"997 Hz at -20 dBFS: one channel {integrated_loudness(sine, 48000):.2f} LUFS (expected -23.0), "
          f"two {integrated_loudness(np.stack([sine, sine]), 48000):.2f} (-20.0)")
    x = load(args.track, 24000, mono=False).numpy()
    minutes = x.shape[1] / 24000 / 60
    analyze(x[:, :24000 * 5], 24000)  # warm-up (librosa's caches, numba)
    start = time.perf_counter()
    a = analyze(x, 24000)
    total = time.perf_counter() - start
    start = time.perf_counter()
    analyze_harmony(x.mean(0), 24000)
    integrated_loudness(x, 24000)
    added = time.perf_counter() - start
    print(f"{args.track}: {minutes:.2f} min, key {a.key} ({a.key_confidence:.2f}), {a.loudness_lufs:.1f} LUFS; "
          f"analyze {total / minutes:.2f} s/min, of which chords+key+integrated LUFS {added / minutes:.2f} s/min")


if __name__ == "__main__":
    main()

"""How well `melos sense` lines its haptics up with the music, against the synthetic corpus's
ground truth (every drum hit and note onset is known to the sample), with two baselines run on
the same clips, and how fast the whole pipeline is.

    python benchmarks/sense_alignment.py --clips 8 --seconds 15

Per tradition and overall:
- transients (the onset layer) against the true percussion hits: onset F-measure at +-50 ms and
  +-25 ms (mir_eval), signed timing error (detected - true) median and 95th percentile of |error|;
  the same against every struck onset (hits and plucked notes, whose attacks are transients
  too) and against every onset (bowed, blown and sung notes too);
- beat F-measure (mir_eval, +-70 ms, first 5 s trimmed as mir_eval does) of the beat layer
  against the metre's pulses;
- baselines: `librosa.onset.onset_detect` as it comes, and an Android-HapticGenerator-style
  chain (causal band-pass 40-400 Hz, rectify, envelope follower, adaptive threshold);
- throughput: analysis + mapping + every export, x real time on one core.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal is stated

import librosa  # noqa: E402
import mir_eval  # noqa: E402
import torch  # noqa: E402
from scipy.signal import butter, sosfilt  # noqa: E402

from melos.data.synth import TRADITIONS  # noqa: E402
from melos.data.synth.corpus import clip_seed  # noqa: E402
from melos.data.synth.dsp import SAMPLE_RATE  # noqa: E402
from melos.data.synth.instruments import INSTRUMENTS, Plucked  # noqa: E402
from melos.data.synth.render import render_clip  # noqa: E402
from melos.sense.analysis import analyze  # noqa: E402
from melos.sense.mapping import to_track  # noqa: E402
from melos.sense.pipeline import DEFAULT_FORMATS, _writers  # noqa: E402

torch.set_num_threads(1)


def truth(labels: dict) -> dict[str, np.ndarray]:
    """Onset times inside the clip: `hits` (percussion), `struck` (hits and plucked or struck
    notes: guitar, piano, oud, kanun, sitar, ... whose attack is a transient), `onsets` (every
    note and hit, bowed, blown and sung notes too) and `pulses` (the metre's beats)."""
    sets: dict[str, list[float]] = {"hits": [], "struck": [], "onsets": []}
    for part in labels["parts"]:
        times = [t for t in part["onsets"] if 0 <= t < labels["seconds"]]
        sets["onsets"] += times
        if "strokes" in part:
            sets["hits"] += times
        if "strokes" in part or isinstance(INSTRUMENTS.get(part["instrument"]), Plucked):
            sets["struck"] += times
    pulse, start = labels["pulse_s"], labels["downbeat_s"] % labels["pulse_s"]
    out = {k: np.unique(np.round(v, 4)) for k, v in sets.items()}
    out["pulses"] = np.arange(start, labels["seconds"], pulse)
    return out


def haptic_generator(audio: np.ndarray, sr: int, min_gap: float = 0.08) -> np.ndarray:
    """Android HapticGenerator-style: causal band-pass, rectify, envelope follower (2 ms attack,
    50 ms release), an event where the envelope crosses up its moving mean + 1 std."""
    band = sosfilt(butter(2, [40, 400], "bandpass", fs=sr, output="sos"), audio)
    x = np.abs(band)
    attack, release = np.exp(-1 / (0.002 * sr)), np.exp(-1 / (0.05 * sr))
    env = np.empty_like(x)
    level = 0.0
    for i, v in enumerate(x):  # the follower is what the chain is: a per-sample recursion
        coeff = attack if v > level else release
        level = coeff * level + (1 - coeff) * v
        env[i] = level
    hop = sr // 200
    env = env[::hop]
    window = 100  # 0.5 s of 5 ms frames
    mean = np.convolve(env, np.ones(window) / window, mode="same")
    std = np.sqrt(np.maximum(np.convolve(env ** 2, np.ones(window) / window, mode="same") - mean ** 2, 0))
    above = env > mean + std
    events, last = [], -np.inf
    for k in np.flatnonzero(above[1:] & ~above[:-1]) + 1:
        if k * hop / sr - last >= min_gap:
            events.append(k * hop / sr)
            last = events[-1]
    return np.array(events)


def timing(reference: np.ndarray, estimate: np.ndarray, window: float = 0.05) -> np.ndarray:
    """Signed errors (estimate - reference, s) of the pairs mir_eval matches within `window`."""
    if not len(reference) or not len(estimate):
        return np.zeros(0)
    pairs = mir_eval.util.match_events(reference, estimate, window)
    return np.array([estimate[j] - reference[i] for i, j in pairs])


CROP_START = 0.05  # seconds at each clip's start left out of the scores (see `scores`)


def scores(reference: np.ndarray, estimate: np.ndarray) -> dict:
    """F-measures of one clip and its matched signed errors (pooled over clips for the table).

    Events in the first CROP_START seconds are left out on both sides: the clips are cut from
    longer renderings, so what sounds at 0 s is the cut, not an onset of the music (melos reports
    a loud start as an onset, as it is one in a whole recording)."""
    reference, estimate = reference[reference >= CROP_START], estimate[estimate >= CROP_START]
    f50, precision, recall = mir_eval.onset.f_measure(reference, estimate, window=0.05)
    return {"f50": f50, "precision": precision, "recall": recall,
            "f25": mir_eval.onset.f_measure(reference, estimate, window=0.025)[0],
            "errors": timing(reference, estimate)}


def summary(clips: list[dict]) -> str:
    """Mean F over clips; median signed error and 95th percentile of |error| over every match."""
    errors = 1000 * np.concatenate([c["errors"] for c in clips])
    median = f"{np.median(errors):+.1f}" if len(errors) else "-"
    p95 = f"{np.percentile(np.abs(errors), 95):.1f}" if len(errors) else "-"
    return f"{np.mean([c['f50'] for c in clips]):.3f} | {np.mean([c['f25'] for c in clips]):.3f} | {median} | {p95}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8, help="clips per tradition")
    parser.add_argument("--seconds", type=float, default=15.0, help="clip length")
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (not the quickstart's)")
    args = parser.parse_args()
    rows: dict[str, dict[str, list]] = {}
    writers = _writers(170.0)
    audio_s = analysis_s = export_s = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for tradition in TRADITIONS:
            for i in range(args.clips):
                audio, labels = render_clip(tradition, clip_seed(args.seed, tradition, i), args.seconds)
                true = truth(labels)
                start = time.perf_counter()
                analysis = analyze(audio, SAMPLE_RATE)
                track = to_track(analysis)
                analysis_s += time.perf_counter() - start
                start = time.perf_counter()
                for fmt in DEFAULT_FORMATS:
                    name, write = writers[fmt]
                    write(Path(tmp) / name, audio[None], SAMPLE_RATE, track, analysis, "clip")
                export_s += time.perf_counter() - start
                audio_s += args.seconds
                transients = np.array([t.time for t in track.transients if t.layer == "onset"])
                beat_layer = np.asarray(analysis.beats)
                systems = {"melos": transients,
                           "librosa onset_detect": librosa.onset.onset_detect(y=audio, sr=SAMPLE_RATE, units="time"),
                           "HapticGenerator-style": haptic_generator(audio, SAMPLE_RATE)}
                for system, estimate in systems.items():
                    for group in (tradition, "all"):
                        row = rows.setdefault(f"{system} | {group}", {"hits": [], "struck": [], "onsets": [],
                                                                        "beat_f": []})
                        for kind in ("hits", "struck", "onsets"):
                            row[kind].append(scores(true[kind], estimate))
                        if system == "melos":
                            ref, est = mir_eval.beat.trim_beats(true["pulses"]), mir_eval.beat.trim_beats(beat_layer)
                            row["beat_f"].append(mir_eval.beat.f_measure(ref, est))
                if tradition == TRADITIONS[0] and i == 0:
                    print(f"first clip: {len(true['hits'])} hits, {len(true['onsets'])} onsets, "
                          f"{len(transients)} transients")
        librosa_beats = []
        for tradition in TRADITIONS:  # the librosa beat tracker as it comes, the beat baseline
            for i in range(args.clips):
                audio, labels = render_clip(tradition, clip_seed(args.seed, tradition, i), args.seconds)
                _, beats = librosa.beat.beat_track(y=audio, sr=SAMPLE_RATE, units="time")
                librosa_beats.append(mir_eval.beat.f_measure(mir_eval.beat.trim_beats(truth(labels)["pulses"]),
                                                             mir_eval.beat.trim_beats(beats)))
    print(f"\n{args.clips} clips x {args.seconds:g} s per tradition, seed {args.seed}\n")
    print("| system | tradition | hits F@50 | hits F@25 | hits median (ms) | hits p95 abs (ms) | struck F@50 | "
          "struck F@25 | struck median (ms) | struck p95 abs (ms) | onsets F@50 | onsets F@25 | onsets median (ms) | "
          "onsets p95 abs (ms) | beat F (70 ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, row in sorted(rows.items(), key=lambda kv: (kv[0].split(" | ")[1] == "all", kv[0])):
        beat = f"{np.mean(row['beat_f']):.3f}" if row["beat_f"] else ""
        print(f"| {key} | {summary(row['hits'])} | {summary(row['struck'])} | {summary(row['onsets'])} | {beat} |")
    print("\nmelos transients, precision / recall at +-50 ms (means over clips):\n")
    print("| tradition | against hits | against struck onsets |\n|---|---|---|")
    for tradition in (*TRADITIONS, "all"):
        row = rows[f"melos | {tradition}"]
        cells = [f"{np.mean([c['precision'] for c in row[k]]):.2f} / {np.mean([c['recall'] for c in row[k]]):.2f}"
                 for k in ("hits", "struck")]
        print(f"| {tradition} | {cells[0]} | {cells[1]} |")
    print(f"\nlibrosa beat_track as it comes: beat F {np.mean(librosa_beats):.3f}")
    print(f"throughput on one core: analysis + mapping {audio_s / analysis_s:.1f}x real time, "
          f"all five exports {audio_s / export_s:.1f}x, together {audio_s / (analysis_s + export_s):.1f}x")


if __name__ == "__main__":
    main()

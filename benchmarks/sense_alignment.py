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

Drum loops (`melos.data.synth.drum_loop`: kick, snare and hats never together, the kick 0 to
-18 dB under a 0.9-peak snare) at 90-150 BPM: per instrument the recall of its hits at +-25 ms
and its median tap, tempo error, beat F-measure against the quarter notes, downbeat F.

Real tracks (`--real DIR`, Debian's wesnoth-1.16-music by default when installed): what a device
gets: AHAP bytes per minute of music, its continuous events and the shortest, Android waveform
segments per second and the share of time the motor runs, the closest pair of transients
against the density gate, beat taps against the median onset tap, and how far before the end of
the music the beats stop.

    python benchmarks/sense_alignment.py --clips 0 --loop-seconds 33 --real /usr/share/games/wesnoth/1.16/data/core/music --tracks 6
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
    parser.add_argument("--loop-seconds", type=float, default=33.0, help="drum loop length (0: no loops)")
    parser.add_argument("--real", type=Path, default=WESNOTH if WESNOTH.is_dir() else None,
                        help="a folder of real tracks (.ogg/.flac/.wav)")
    parser.add_argument("--tracks", type=int, default=6, help="real tracks to measure (every n-th of the folder)")
    args = parser.parse_args()
    if args.clips:
        corpus(args)
    if args.loop_seconds:
        loops(args.loop_seconds)
    if args.real and args.tracks:
        real(args.real, args.tracks)


def corpus(args: argparse.Namespace) -> None:
    """The synthetic traditions against their ground truth, with the two baselines."""
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
    print("| tradition | against hits | against struck onsets | against every onset |\n|---|---|---|---|")
    for tradition in (*TRADITIONS, "all"):
        row = rows[f"melos | {tradition}"]
        cells = [f"{np.mean([c['precision'] for c in row[k]]):.2f} / {np.mean([c['recall'] for c in row[k]]):.2f}"
                 for k in ("hits", "struck", "onsets")]
        print(f"| {tradition} | {' | '.join(cells)} |")
    print(f"\nlibrosa beat_track as it comes: beat F {np.mean(librosa_beats):.3f}")
    print(f"throughput on one core: analysis + mapping {audio_s / analysis_s:.1f}x real time, "
          f"all five exports {audio_s / export_s:.1f}x, together {audio_s / (analysis_s + export_s):.1f}x")



WESNOTH = Path("/usr/share/games/wesnoth/1.16/data/core/music")
LOOP_TEMPI = (90, 105, 120, 135, 150)
KICK_LEVELS = (0, -6, -12, -18)


def loops(seconds: float) -> None:
    """Per tempo and kick level: recall and median tap per instrument, tempo, beats, downbeats."""
    from melos.data.synth.drum_loop import INSTRUMENTS, drum_loop

    print(f"\ndrum loops, {seconds:g} s each (kick dB under the snare; recall at +-25 ms / median tap amplitude, "
          "default preset; subtle: kick recall)\n")
    print("| BPM | kick dB | kick | snare | hat | subtle kick recall | tempo | beat F | downbeat F |")
    print("|---|---|---|---|---|---|---|---|---|")
    worst = {name: 1.0 for name in INSTRUMENTS}
    tempo_errors, beat_fs = [], []
    for bpm in LOOP_TEMPI:
        for kick_db in KICK_LEVELS:
            loop = drum_loop(bpm, seconds, kick_db=kick_db)
            analysis = analyze(loop.audio, loop.sample_rate)
            cells = []
            for preset in ("default", "subtle"):
                onsets = [t for t in to_track(analysis, preset).transients if t.layer == "onset"]
                times, levels = np.array([t.time for t in onsets]), np.array([t.intensity for t in onsets])
                for name in INSTRUMENTS if preset == "default" else ("kick",):
                    pairs = mir_eval.util.match_events(loop.hits[name], times, 0.025) if len(times) else []
                    recall = len(pairs) / len(loop.hits[name])
                    worst[name] = min(worst[name], recall)
                    tap = np.median([levels[j] for _, j in pairs]) if pairs else 0.0
                    cells.append(f"{recall:.2f} / {tap:.2f}" if preset == "default" else f"{recall:.2f}")
            beat_f = mir_eval.beat.f_measure(mir_eval.beat.trim_beats(loop.beats), mir_eval.beat.trim_beats(analysis.beats))
            down_f = mir_eval.beat.f_measure(loop.downbeats, analysis.downbeats)
            tempo_errors.append(abs(analysis.tempo / bpm - 1))
            beat_fs.append(beat_f)
            print(f"| {bpm} | {kick_db} | {' | '.join(cells)} | {analysis.tempo:.1f} | {beat_f:.3f} | {down_f:.3f} |")
    print(f"\nworst recall: {', '.join(f'{k} {v:.2f}' for k, v in worst.items())}; largest tempo error "
          f"{100 * max(tempo_errors):.1f}%; lowest beat F {min(beat_fs):.3f}")


def real(folder: Path, tracks: int) -> None:
    """Export figures a phone cares about, on every n-th track of `folder`."""
    import json

    from melos.audio import load
    from melos.sense.analysis import ANALYSIS_RATE

    import soundfile as sf

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".ogg", ".flac", ".wav")
                   and 60 <= sf.info(str(p)).duration <= 400)  # whole pieces, not stingers or hour-long loops
    files = files[::max(1, len(files) // tracks)][:tracks]
    writers = _writers(170.0)
    print(f"\nreal tracks from {folder}\n")
    print("| track | min | AHAP kB/min | continuous events | shortest (ms) | Android segments/s | motor on | "
          "closest taps (ms) | beat tap / median onset tap | beats end before the music (s) | tempo |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in files:
        audio = load(path, ANALYSIS_RATE, mono=True, allow_truncated=True).numpy().astype(np.float64)
        analysis = analyze(audio, ANALYSIS_RATE)
        track = to_track(analysis)
        minutes = analysis.duration / 60
        with tempfile.TemporaryDirectory() as tmp:
            for fmt in ("ahap", "android"):
                name, write = writers[fmt]
                write(Path(tmp) / name, audio[None], ANALYSIS_RATE, track, analysis, path.stem)
            ahap_bytes = (Path(tmp) / writers["ahap"][0]).stat().st_size
            ahap = json.loads((Path(tmp) / writers["ahap"][0]).read_text())
            wave = json.loads((Path(tmp) / writers["android"][0]).read_text())
        durations = [e["Event"]["EventDuration"] for e in ahap["Pattern"]
                     if "Event" in e and e["Event"]["EventType"] == "HapticContinuous"]
        timings, amplitudes = np.array(wave["timings"]), np.array(wave["amplitudes"])
        times = np.array([t.time for t in track.transients])
        onset_taps = [t.intensity for t in track.transients if t.layer == "onset"]
        beat_taps = [t.intensity for t in track.transients if t.layer != "onset"]
        ratio = f"{np.max(beat_taps) / np.median(onset_taps):.2f} max" if beat_taps and onset_taps else "-"
        loud = np.flatnonzero(analysis.rms > 0.01 * analysis.rms.max())
        music_end = loud[-1] * analysis.hop if len(loud) else 0.0
        gap = analysis.duration if not len(analysis.beats) else music_end - analysis.beats[-1]
        print(f"| {path.name} | {minutes:.1f} | {ahap_bytes / 1000 / minutes:.0f} | {len(durations)} | "
              f"{1000 * min(durations, default=0):.0f} | {len(timings) / analysis.duration:.1f} | "
              f"{timings[amplitudes > 0].sum() / timings.sum():.0%} | "
              f"{1000 * np.diff(times).min() if len(times) > 1 else 0:.0f} | {ratio} | {gap:.2f} | {analysis.tempo:.0f} |")


if __name__ == "__main__":
    main()

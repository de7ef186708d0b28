"""How fast `melos sense --formats mp4` writes its video: rendering + encoding against real time, on
one core, with where the time goes.

    python benchmarks/sense_video.py                       # 60 s of a Wesnoth track, 1280x720, 30 fps
    python benchmarks/sense_video.py --frame docs/figures/sense_video_frame.png --at 24

Reports the analysis (not part of the video's cost, for scale), then the video: the total as x
real time (above 1 is faster than the music plays) by the wall clock and by the CPU time the
process used (the same on an idle core; the fairer figure on a shared machine), and per stage
(`VideoStats`): preparing the per-frame values, the score drawn into its strip, the per-frame
drawing, the conversion to yuv420p, H.264 encoding and AAC encoding, in wall and CPU seconds. `--frame` saves the decoded frame
at `--at` seconds as a PNG, as a viewer sees it after compression.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goal is stated

import av  # noqa: E402
import torch  # noqa: E402

from melos.audio import info, load  # noqa: E402
from melos.sense.analysis import analyze  # noqa: E402
from melos.sense.export.video import write_video  # noqa: E402
from melos.sense.mapping import to_track  # noqa: E402

torch.set_num_threads(1)
TRACK = "/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", default=TRACK)
    parser.add_argument("--seconds", type=float, default=60.0, help="from the start of the file")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--preset", default="veryfast", help="libx264 preset")
    parser.add_argument("--threads", type=int, default=1, help="encoder/converter threads (0: all cores)")
    parser.add_argument("--frame", type=Path, help="save the decoded frame at --at seconds here (PNG)")
    parser.add_argument("--at", type=float, default=24.0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    rate = info(args.audio).sample_rate
    audio = load(args.audio, rate, mono=False).numpy()[:, :round(args.seconds * rate)]  # [C, N]
    seconds = audio.shape[1] / rate
    started = time.perf_counter()
    analysis = analyze(audio.mean(axis=0), rate)
    track = to_track(analysis)
    analysis_s = time.perf_counter() - started
    print(f"{Path(args.audio).name}: {seconds:.1f} s, {audio.shape[0]} channels at {rate} Hz; "
          f"analysis + mapping {analysis_s:.2f} s (not counted below)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video.mp4"
        started, cpu_started = time.perf_counter(), time.process_time()
        stats = write_video(path, audio, rate, analysis, track, title=Path(args.audio).stem, width=width,
                            height=height, fps=args.fps, preset=args.preset, threads=args.threads)
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        size = path.stat().st_size
        if args.frame:
            save_frame(path, args.at, args.frame)
    print(f"video {width}x{height} at {args.fps} fps, libx264 preset {args.preset}, threads {args.threads}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}: {stats.n_frames} frames, {size / 1e6:.1f} MB")
    per_frame = 1000 * total / stats.n_frames
    print(f"total {total:.2f} s = {seconds / total:.2f}x real time ({per_frame:.1f} ms per frame); "
          f"CPU time of the process {cpu:.2f} s = {seconds / cpu:.2f}x real time")
    print(f"  {'stage':8s} {'wall s':>7s} {'CPU s':>7s} {'CPU %':>6s} {'CPU ms/frame':>12s}")
    cpu_sum = sum(stats.cpu_seconds.values())
    for stage, wall in stats.seconds.items():
        used = stats.cpu_seconds[stage]
        print(f"  {stage:8s} {wall:7.2f} {used:7.2f} {100 * used / cpu_sum:6.1f} {1000 * used / stats.n_frames:12.2f}")
    print(f"  {'sum':8s} {sum(stats.seconds.values()):7.2f} {cpu_sum:7.2f}   (CPU of the calling thread; "
          f"the process's: {cpu:.2f})")


def save_frame(video: Path, at: float, out: Path) -> None:
    """The frame on screen at `at` seconds, decoded from the file, as a PNG."""
    from PIL import Image

    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time >= at - 1e-6:
                out.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(out)
                print(f"frame at {frame.time:.3f} s -> {out}")
                return


if __name__ == "__main__":
    main()

"""`melos embed` local engine vs `--engine ray` with 1 and 2 workers on this machine.

    python benchmarks/embed_ray.py [--minutes 4] [--preset mert-tiny] [--rounds 1] [--format safetensors]
    python benchmarks/embed_ray.py --preset mert-v1-95m --minutes 30 --device cuda --dtype bfloat16 \
        --batch-size 16 --gpus 1      # a GPU node: the Ray workers share --gpus GPUs evenly

Music: the shortest of Debian's wesnoth-1.16-music tracks (Ogg Vorbis, 44.1 kHz stereo) until
`--minutes` of audio. One random-weight encoder, loaded once, goes to every run (Ray ships it to
its actors), 30 s windows, every hidden state mean-pooled. Ray is started once (its start-up is
printed apart); each Ray run's wall time includes starting its actors, which is what a user
waits for. The machine's cores are shared out evenly: local runs torch on all of them, 1 worker
gets all of them, 2 workers half each. The runs alternate round by round, since this machine's
speed drifts. Prints wall time, x real time, the ratio to the local engine and the max abs
difference of the embeddings from the local engine's.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile
import time
from pathlib import Path

import soundfile as sf
import torch

from melos.data.sources import AudioSource
from melos.embedding import Embeddings, embed, embed_ray, read_parquet
from melos.models import load_encoder

MUSIC = "/usr/share/games/wesnoth/1.16/data/core/music"


def music_files(minutes: float) -> tuple[list[Path], float]:
    files = sorted((sf.info(p).duration, Path(p)) for p in glob.glob(f"{MUSIC}/*.ogg"))
    if not files:
        raise SystemExit(f"no music in {MUSIC}: apt-get install wesnoth-1.16-music")
    chosen, total = [], 0.0
    for duration, path in files:
        if total >= minutes * 60:
            break
        chosen.append(path)
        total += duration
    return chosen, total


def outputs(out: Path, fmt: str, files: list[Path]) -> torch.Tensor:
    """Every embedding of a run, in file then window order, as one [n, H] tensor."""
    if fmt == "parquet":
        table = read_parquet(out).sort_by([("path", "ascending"), ("window", "ascending")])
        cols = [c for c in table.column_names if c.startswith("layer_")]
        return torch.cat([torch.tensor(table[c].combine_chunks().values.to_numpy()) for c in cols])
    return torch.cat([Embeddings.load(out / f"{f.name}.safetensors").embeddings.flatten() for f in sorted(files)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--preset", default="mert-tiny")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--format", choices=("safetensors", "parquet"), default="safetensors")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--gpus", type=float, default=0.0, help="GPUs the Ray workers share evenly (with --device cuda)")
    args = p.parse_args()

    import ray

    files, seconds = music_files(args.minutes)
    cores = os.cpu_count() or 1
    torch.manual_seed(0)
    encoder = load_encoder(args.preset)
    print(f"{len(files)} files, {seconds / 60:.1f} min of audio, {args.preset}, {cores} cores, format {args.format}, "
          f"{args.device} {args.dtype}, batch {args.batch_size}")
    start = time.perf_counter()
    ray.init(num_cpus=cores, num_gpus=args.gpus, include_dashboard=False, logging_level="WARNING")
    print(f"ray.init: {time.perf_counter() - start:.1f} s (not counted below)")

    sources = [AudioSource(f, f.name) for f in files]
    common = dict(format=args.format, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                  progress=False)
    runs = {
        "local": lambda out: embed(encoder, sources, out, **common),
        "ray, 1 worker": lambda out: embed_ray(encoder, sources, out, workers=1, cpus_per_worker=cores,
                                               gpus_per_worker=args.gpus, **common),
        "ray, 2 workers": lambda out: embed_ray(encoder, sources, out, workers=2, cpus_per_worker=max(1, cores // 2),
                                                gpus_per_worker=args.gpus / 2, **common),
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    diffs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = list(runs) if r % 2 == 0 else list(reversed(runs))
            got = {}
            for name in order:
                out = Path(tmp) / f"{r}-{name}"
                torch.set_num_threads(cores)
                begin = time.perf_counter()
                summary = runs[name](out)
                walls[name].append(time.perf_counter() - begin)
                assert summary.ok and summary.n_done == len(files), summary.failed
                got[name] = outputs(out, args.format, files)
            for name in runs:
                diffs[name] = max(diffs.get(name, 0.0), (got[name] - got["local"]).abs().max().item())
    ray.shutdown()

    local = statistics.median(walls["local"])
    print(f"| engine | wall, median of {args.rounds} (each) | x real time | local / this | max abs diff vs local |")
    print("|---|---|---|---|---|")
    for name, times in walls.items():
        wall = statistics.median(times)
        diff = "-" if name == "local" else f"{diffs[name]:.1e}"
        print(f"| {name} | {wall:.1f} s ({', '.join(f'{t:.1f}' for t in times)}) | {seconds / wall:.1f}x | "
              f"{local / wall:.2f} | {diff} |")


if __name__ == "__main__":
    main()

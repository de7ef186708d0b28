"""`melos embed`: embed audio files (a file, a folder or a JSONL manifest) with a music encoder."""

from __future__ import annotations

import argparse
import sys

from ..models.loading import PRESET_SEED
from .options import add_allow_truncated, add_progress

HELP = """\
Embed audio files with a music encoder: every hidden state, mean-pooled per window.

For each input file, OUT gets <relative path>.safetensors holding `embeddings`
[n_layers, n_windows, H] (or frames [n_layers, T, H] with --pool none) and `window_starts`,
plus one row in OUT/index.jsonl (path, duration, n_windows, output, status). A bad file is
reported with its reason and the run goes on; the exit status is 1 if any file failed. A file
cut short (partial download, full disk) is such a file unless --allow-truncated is given.

--format parquet writes OUT/parquet/part-*.parquet instead: one row per (file, window) with
columns path, window, start and layer_<L> (pooled embeddings), readable by Ray, DuckDB or
pandas as a table (melos.embedding.read_parquet reads it exactly).

--engine ray runs the same job on Ray Data (pip install 'melos[ray]'): decoding as CPU tasks,
--workers encoder replicas as actors, each file written as it completes; same outputs, same
--skip-existing. Without --address it starts Ray on this machine; --address auto (or
ray://host:10001) joins a running cluster, whose nodes must all see OUT.

examples:
  melos embed --model mert-v1-95m --input music/ --out emb/
  melos embed --model ~/ckpt/MERT-v1-330M --input files.jsonl --out emb/ --layers 0,6,12
  melos embed --model m-a-p/MERT-v1-95M --input music/ --out emb/ --skip-existing   # resume
  melos embed --model ~/ckpt/MERT-v1-95M --input files.jsonl --out /shared/emb/ --format parquet \
      --engine ray --address auto --workers 8 --gpus-per-worker 1 --device cuda --dtype bfloat16 --batch-size 16
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("embed", help="embed audio files (a file, a folder or a JSONL manifest)",
                            description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True,
                   help="preset name (e.g. mert-v1-95m: the architecture with random weights, drawn with --seed, "
                        "for trying the pipeline; not a trained model), local checkpoint directory in the official "
                        "Hugging Face layout, or a hub id already in the local HF cache")
    p.add_argument("--input", required=True, help="audio file, folder (searched recursively) or JSONL manifest "
                                                  "with a 'path' per line")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layers", default="all", help="'all' or hidden-state indices, e.g. 0,5,7 (0 = encoder input)")
    p.add_argument("--window", type=float, default=30.0, help="window length in seconds (default 30)")
    p.add_argument("--hop", type=float, default=None, help="hop between windows in seconds (default: window)")
    p.add_argument("--pool", choices=("mean", "none"), default="mean",
                   help="mean over time per window (default), or none to keep every frame")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="compute precision. bfloat16 on a CPU holds the weights in bf16 (norms in float32): "
                        "about 1.6x float32's speed where the CPU has AVX512-BF16 or AMX, every hidden state within "
                        "cosine 0.9999 of float32; a CPU without them says so and runs float32. On a GPU: autocast")
    p.add_argument("--batch-size", type=int, default=1,
                   help="windows per encoder call (default 1: fastest on CPU; raise it on a GPU)")
    p.add_argument("--seed", type=int, default=PRESET_SEED,
                   help=f"seed of a preset's random weights (default {PRESET_SEED}): the same seed gives the same "
                        "embeddings in every run; checkpoints ignore it")
    p.add_argument("--skip-existing", action="store_true",
                   help="keep files an earlier run finished (resume an interrupted run); retry failed ones")
    p.add_argument("--format", choices=("safetensors", "parquet"), default="safetensors",
                   help="a safetensors file per input file (default), or parquet parts with a row per window "
                        "(needs --pool mean)")
    add_allow_truncated(p, "that part is embedded")
    add_progress(p)
    ray = p.add_argument_group("Ray engine")
    ray.add_argument("--engine", choices=("local", "ray"), default="local",
                     help="local: this process (default); ray: Ray Data on a local or existing cluster")
    ray.add_argument("--address", default=None,
                     help="Ray cluster to join: 'auto' (this machine's running cluster) or ray://host:10001; "
                          "default: start a local Ray")
    ray.add_argument("--workers", type=int, default=1, help="encoder actors, one model replica each (default 1)")
    ray.add_argument("--cpus-per-worker", type=float, default=1.0,
                     help="CPUs per actor, also its torch threads (default 1)")
    ray.add_argument("--gpus-per-worker", type=float, default=0.0,
                     help="GPUs per actor on a GPU cluster, e.g. 1 (or 0.5 to share one); use with --device cuda")


def run(model: str, input: str, out: str, engine: str = "local", address: str | None = None, workers: int = 1,
        cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, **kwargs) -> int:
    if engine == "ray":
        from ..embedding.ray_engine import embed_ray

        summary = embed_ray(model, input, out, address=address, workers=workers, cpus_per_worker=cpus_per_worker,
                            gpus_per_worker=gpus_per_worker, **kwargs)
    else:
        if address is not None or workers != 1 or gpus_per_worker or cpus_per_worker != 1.0:
            raise ValueError("--address, --workers, --cpus-per-worker and --gpus-per-worker need --engine ray")
        from ..embedding import embed

        summary = embed(model, input, out, **kwargs)
    speed = summary.audio_seconds / max(summary.wall_seconds, 1e-9)
    print(f"embedded {summary.n_done} files ({summary.audio_seconds / 3600:.2f} h of audio, {speed:.1f}x "
          f"real time), skipped {summary.n_skipped} done earlier, {len(summary.failed)} failed "
          f"-> {summary.out_dir}")
    for path, reason in summary.failed.items():
        print(f"  failed: {reason}" if path in reason else f"  failed: {path}: {reason}", file=sys.stderr)
    return 0 if summary.ok else 1

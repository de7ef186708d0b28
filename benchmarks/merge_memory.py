"""Memory and time of a streamed merge: base + four random 95M-size checkpoints, task arithmetic.

    python benchmarks/merge_memory.py [--models 4] [--preset mert-v1-95m] [--dir /tmp/melos-merge-bench]

Each measurement runs in its own process, so peak RSS (ru_maxrss) is that job's alone; the
baseline is the process's RSS after imports, before any checkpoint is read. Jobs:
- read: read every byte of every input file, one after the other (the floor);
- streaming: `melos.merging.merge` (task arithmetic, lambda 0.2), smoke test included;
- naive: load all state dicts, merge in memory, save_file.
Prints wall times, peak RSS above baseline in units of one model's size, and the ratios the
issue sets targets for (streaming peak <= 1.5 models, streaming wall <= 2x the read time).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process. Not ru_maxrss: after fork + exec that still
    counts the parent's pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def worker(job: str, folder: Path, n: int) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from melos.merging import MergeSpec, executor, merge

    models = [folder / f"model{i}" for i in range(n)]
    out = folder / f"out-{job}"
    extra = {"smoke_test": 0.0}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            extra[name] += time.perf_counter() - start
            return result
        return wrapper

    executor.smoke_test = timed("smoke_test", executor.smoke_test)
    baseline = status_mb("VmRSS")
    start = time.perf_counter()
    if job == "read":  # every byte of every input, into memory, one file at a time
        for path in [folder / "base", *models]:
            (path / "model.safetensors").read_bytes()
    elif job == "streaming":
        merge(folder / "base", models, MergeSpec(weights=[0.2]), out, progress=False)
    else:
        base = load_file(folder / "base" / "model.safetensors")
        states = [load_file(m / "model.safetensors") for m in models]
        merged = {k: v + 0.2 * sum(s[k] - v for s in states) for k, v in base.items()}
        out.mkdir(exist_ok=True)
        save_file(merged, out / "model.safetensors")
    wall = time.perf_counter() - start
    print(json.dumps({"job": job, "wall": wall, "baseline_mb": baseline, "peak_mb": status_mb("VmHWM"), **extra,
                      "torch": torch.__version__}))


def make_checkpoints(folder: Path, preset: str, n: int) -> float:
    """A random base and n perturbed copies; returns one model's size in MB."""
    import torch

    from melos.models import load_encoder

    base = folder / "base"
    if not base.is_dir():
        torch.manual_seed(0)
        load_encoder(preset).save_pretrained(base)
    model = load_encoder(base)
    for i in range(n):
        if not (folder / f"model{i}").is_dir():
            g = torch.Generator().manual_seed(i + 1)
            copy = load_encoder(base)
            with torch.no_grad():
                for p in copy.state_dict().values():
                    p.add_(torch.randn(p.shape, generator=g) * 0.01)
            copy.save_pretrained(folder / f"model{i}")
    return sum(p.numel() * p.element_size() for p in model.state_dict().values()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--preset", default="mert-v1-95m")
    parser.add_argument("--dir", default="/tmp/melos-merge-bench")
    parser.add_argument("--worker", choices=("read", "streaming", "naive"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = Path(args.dir)
    if args.worker:
        return worker(args.worker, folder, args.models)
    folder.mkdir(parents=True, exist_ok=True)
    size = make_checkpoints(folder, args.preset, args.models)
    runs = {}
    for job in ("read", "streaming", "naive", "read", "streaming"):  # alternate: this VM's speed drifts
        line = subprocess.run([sys.executable, __file__, "--worker", job, "--dir", str(folder), "--models",
                               str(args.models)], check=True, capture_output=True, text=True).stdout.splitlines()[-1]
        result = json.loads(line)
        runs.setdefault(job, []).append(result)
    print(f"{args.preset}: one model = {size:.0f} MB; base + {args.models} models; task arithmetic; CPU")
    for job, results in runs.items():
        wall = min(r["wall"] for r in results)
        peak = max(r["peak_mb"] - r["baseline_mb"] for r in results)
        print(f"  {job:9s} wall {wall:6.1f} s (best of {len(results)})   peak RSS above baseline {peak:7.0f} MB "
              f"= {peak / size:.2f} models")
    read = min(r["wall"] for r in runs["read"])
    best = min(runs["streaming"], key=lambda r: r["wall"])
    stream = best["wall"]
    core = stream - best["smoke_test"]
    print(f"  streaming: {core:.1f} s reading + merging + writing (inputs hashed on a second thread meanwhile), "
          f"{best['smoke_test']:.1f} s smoke test (load + 5 s forward)")
    print(f"  streaming / read time: {stream / read:.2f}x in all, {core / read:.2f}x without the smoke test "
          f"(target <= 2); peak (streaming) "
          f"{max(r['peak_mb'] - r['baseline_mb'] for r in runs['streaming']) / size:.2f} models (target <= 1.5); "
          f"naive {max(r['peak_mb'] - r['baseline_mb'] for r in runs['naive']) / size:.2f} models")


if __name__ == "__main__":
    main()

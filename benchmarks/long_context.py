"""Long-context scaling: SummaryMixing (SM) vs rotary multi-head self-attention (MHSA), time and peak
memory against clip length, 30 s to 10 min of audio at 25 Hz (750 to 15000 frames), batch 1, D = 1024.

    python benchmarks/long_context.py [--device cpu|cuda] [--dtype float32|bfloat16] [--parts layer,encoder]
        [--modes train,infer] [--max-minutes 10] [--encoder-max-minutes 2] [--repeats 3] [--sdpa auto|math]
        [--out benchmarks/results/long_context]

Parts: "layer" is one token mixer, RotaryAttention(1024, 16) vs SummaryMixing(1024, 512) (the widths of
the presets); "encoder" is the 12 blocks + final LayerNorm of branchformer-12x1024 (MHSA) vs
branchformer-sm-12x1024 (SM) on random frames [1, T, 1024]. The front end is left out: it is the same
linear-cost conv stack in both. Modules run in eval mode (dropout off) in both modes, since on CPU
attention dropout would force SDPA onto its T x T math kernel. Modes: "train" is forward + backward of
output.float().square().mean() to the input and the weights; "infer" is a forward under inference_mode.
bfloat16 means autocast. --sdpa math forces SDPA's T x T kernel: by default it may pick a fused one
(flash attention, on CPU too) whose memory grows linearly with T; the kernel in use is printed.

Time is the median of --repeats runs after one warm-up. Peak memory is counted from just before the
input is created, so weights and libraries are excluded (weight gradients, in train mode, count). On
CUDA it is max_memory_allocated minus memory_allocated. On CPU every measurement runs in a fresh spawned
process, and it is that process's peak resident set (VmHWM, reset just before the input is created)
minus its resident set at that moment (/proc/self/statm). A size that runs out of memory is recorded
as OOM. Prints per (part, mode) a table with the ratios MHSA / SM and the growth exponents (log-log
slope against frames, over all lengths and over lengths >= 1 min, where fixed costs no longer dominate),
then the targets: SM time exponent <= 1.1; at the longest layer length, forward+backward SM >= 5x faster
and <= 1/10 of MHSA's memory. Writes DIR/results.json (after every measurement) and DIR/long_context.png.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import re
import shlex
import statistics
import sys
import time
import traceback
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from melos.layers.rotary_attention import RotaryAttention
from melos.layers.summary_mixing import SummaryMixing
from melos.models.efficient import PRESETS, EfficientEncoder
from melos.utils.atomic import write_text
from melos.utils.plotting import pyplot, save_figure

FRAME_RATE = 25  # Hz, the efficient encoders' frame rate
MINUTES = (0.5, 1, 2, 5, 10)
PRESET = {"MHSA": "branchformer-12x1024", "SM": "branchformer-sm-12x1024"}
MODE_NAMES = {"train": "fwd+bwd", "infer": "forward"}


@dataclass
class Row:
    """One measurement; seconds and peak_mib are None where it ran out of memory."""
    part: str
    mixer: str
    mode: str
    minutes: float
    frames: int
    seconds: float | None = None
    peak_mib: float | None = None


def build(part: str, mixer: str) -> nn.Module:
    """The mixer alone, or a preset's blocks + final norm; both map [B, T, D] -> [B, T, D]."""
    c = PRESETS[PRESET[mixer]]
    if part == "layer":
        return RotaryAttention(c.dim, c.n_heads) if mixer == "MHSA" else SummaryMixing(c.dim, c.summary_hidden)
    encoder = EfficientEncoder(c)
    return nn.Sequential(*encoder.blocks, encoder.norm)  # the front end is left out


def measure(job: Row, setup: dict) -> tuple[float, float]:
    """(median seconds, peak MiB above the memory held before the input) of one job, in this process."""
    torch.manual_seed(0)
    device = torch.device(setup["device"])
    model = build(job.part, job.mixer).to(device).eval()
    cuda = device.type == "cuda"
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        # Not ru_maxrss: it cannot be reset, and after spawn's fork + exec it still counts the parent's pages.
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        base = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    x = torch.randn(1, job.frames, PRESETS[PRESET[job.mixer]].dim, device=device,
                    requires_grad=job.mode == "train")  # [B, T, D]
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=setup["dtype"] == "bfloat16")

    def step() -> None:
        if job.mode == "infer":
            with torch.inference_mode(), autocast:
                model(x)
            return
        with autocast:
            y = model(x)  # [1, T, D]
        y.float().square().mean().backward()
        x.grad = None
        model.zero_grad(set_to_none=True)

    times = []
    with sdpa_kernel(SDPBackend.MATH) if setup["sdpa"] == "math" else nullcontext():
        for _ in range(setup["repeats"] + 1):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    status = Path("/proc/self/status").read_text()
    peak = torch.cuda.max_memory_allocated() if cuda else int(re.search(r"VmHWM:\s*(\d+) kB", status)[1]) * 1024
    return statistics.median(times[1:]), (peak - base) / 2**20


def is_oom(error: BaseException) -> bool:
    # The CPU allocator raises a plain RuntimeError when malloc fails.
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(error)


def child(job: Row, setup: dict, send) -> None:
    torch.set_num_threads(setup["n_threads"])
    try:
        send.send(measure(job, setup))
    except Exception as error:
        send.send("OOM" if is_oom(error) else traceback.format_exc())


def run(job: Row, setup: dict) -> tuple[float, float] | None:
    """measure(job), in a fresh process on CPU; None if it ran out of memory."""
    if setup["device"] == "cuda":
        try:
            return measure(job, setup)
        except torch.OutOfMemoryError:
            return None
        finally:
            gc.collect()
            torch.cuda.empty_cache()
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=child, args=(job, setup, send))
    process.start()
    send.close()  # so that recv() sees EOF if the child dies without answering
    try:
        result = receive.recv()
    except EOFError:
        result = None
    process.join()
    if result is None and process.exitcode != -9:  # SIGKILL: the kernel's OOM killer
        raise RuntimeError(f"{job} died with exit code {process.exitcode}")
    if isinstance(result, str) and result != "OOM":
        raise RuntimeError(f"{job} failed:\n{result}")
    return None if result in (None, "OOM") else result


def exponent(rows: list[Row], key: str, min_minutes: float = 0.0) -> float | None:
    """Least-squares slope of log(value) against log(frames) over the measured rows."""
    points = [(r.frames, getattr(r, key)) for r in rows if r.minutes >= min_minutes and r.seconds is not None
              and getattr(r, key) > 0]
    if len(points) < 2:
        return None
    frames, values = np.log(np.array(points, dtype=float)).T
    return float(np.polyfit(frames, values, 1)[0])


def fmt(value: float | None, spec: str = ".3g", missing: str = "OOM") -> str:
    return missing if value is None else ("n/a" if value != value else format(value, spec))


def length_name(minutes: float) -> str:
    return f"{minutes * 60:g} s" if minutes < 1 else f"{minutes:g} min"


def report(rows: list[Row], part: str, mode: str) -> None:
    series = {m: [r for r in rows if (r.part, r.mixer, r.mode) == (part, m, mode)] for m in PRESET}
    print(f"\n{part}, {MODE_NAMES[mode]}")
    print(f"  {'length':>7s} {'frames':>6s} {'MHSA s':>9s} {'SM s':>9s} {'speed x':>8s} {'MHSA MiB':>9s} "
          f"{'SM MiB':>9s} {'memory x':>8s}")
    for a, s in zip(series["MHSA"], series["SM"]):
        both = a.seconds is not None and s.seconds is not None
        speed = a.seconds / s.seconds if both else float("nan")
        memory = a.peak_mib / s.peak_mib if both and s.peak_mib > 0 else float("nan")
        print(f"  {length_name(a.minutes):>7s} {a.frames:6d} {fmt(a.seconds):>9s} {fmt(s.seconds):>9s} "
              f"{fmt(speed, '.2f'):>8s} {fmt(a.peak_mib, '.0f'):>9s} {fmt(s.peak_mib, '.0f'):>9s} "
              f"{fmt(memory, '.2f'):>8s}")
    for mixer, rs in series.items():
        slopes = [fmt(exponent(rs, key, lo), ".2f", "n/a") for lo in (0, 1)
                  for key in ("seconds", "peak_mib")]
        print(f"  growth exponent {mixer:4s}: time {slopes[0]}, memory {slopes[1]} (all lengths); "
              f"time {slopes[2]}, memory {slopes[3]} (>= 1 min)")


def targets(rows: list[Row]) -> None:
    print("\ntargets")
    for part, mode in dict.fromkeys((r.part, r.mode) for r in rows):
        sm = [r for r in rows if (r.part, r.mixer, r.mode) == (part, "SM", mode)]
        slope, span = exponent(sm, "seconds", 1), ">= 1 min"
        if slope is None:
            slope, span = exponent(sm, "seconds"), "all lengths"
        verdict = "n/a" if slope is None else ("met" if slope <= 1.1 else "NOT met")
        print(f"  SM time exponent <= 1.1, {part} {MODE_NAMES[mode]}: {fmt(slope, '.2f', 'n/a')} ({span}) {verdict}")
    layer = {(r.mixer, r.minutes): r for r in rows if (r.part, r.mode) == ("layer", "train")}
    lengths = [m for (mixer, m), r in layer.items() if mixer == "SM" and r.seconds is not None]
    if not lengths:
        print("  layer fwd+bwd speed and memory: not measured")
        return
    a, s = layer["MHSA", max(lengths)], layer["SM", max(lengths)]
    if a.seconds is None:
        print(f"  layer fwd+bwd at {length_name(s.minutes)}: MHSA OOM, SM ran: speed and memory targets met")
        return
    speed, share = a.seconds / s.seconds, s.peak_mib / a.peak_mib
    print(f"  layer fwd+bwd at {length_name(s.minutes)}: SM {speed:.1f}x faster (target >= 5) "
          f"{'met' if speed >= 5 else 'NOT met'}; SM memory {share:.3f} of MHSA's (target <= 0.1) "
          f"{'met' if share <= 0.1 else 'NOT met'}")


def plot(rows: list[Row], title: str, path: Path) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = pyplot().subplots(1, 2, figsize=(12, 4.8))
    for key in dict.fromkeys((r.part, r.mixer, r.mode) for r in rows):
        part, mixer, mode = key
        ok = [r for r in rows if (r.part, r.mixer, r.mode) == key and r.seconds is not None]
        style = {"color": "C3" if mixer == "MHSA" else "C0", "linestyle": "-" if part == "layer" else "--",
                 "marker": "o" if mode == "train" else "s", "label": f"{mixer} {part} {MODE_NAMES[mode]}"}
        axes[0].plot([r.minutes for r in ok], [r.seconds for r in ok], **style)
        axes[1].plot([r.minutes for r in ok], [r.peak_mib for r in ok], **style)
    for ax, ylabel in zip(axes, ("time per run (s)", "peak memory above weights (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="audio length (minutes at 25 Hz, batch 1)", ylabel=ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(sorted({r.minutes for r in rows}))  # the measured lengths, as plain numbers
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save_figure(fig, path)


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    model = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())  # Linux only, as is VmHWM
    return f"{model[1] if model else 'CPU'}, {os.cpu_count()} logical CPUs"


def sdpa_choice(device: str, dtype: str, forced: str) -> str:
    """The kernel SDPA picks for the MHSA layer's q, k, v (torch has no public call that says)."""
    if forced == "math":
        return "MATH (forced)"
    q = torch.zeros(1, 16, 64, 64, device=device, dtype=getattr(torch, dtype))
    try:
        return SDPBackend(torch._fused_sdp_choice(q, q, q)).name
    except Exception:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--parts", default="layer,encoder", help="comma-separated: layer, encoder")
    parser.add_argument("--modes", default="train,infer", help="comma-separated: train (fwd+bwd), infer")
    parser.add_argument("--max-minutes", type=float, default=10.0, help="longest clip for the layer")
    parser.add_argument("--encoder-max-minutes", type=float,
                        help="longest clip for the encoder (default 2 on CPU, where 12 MHSA blocks fwd+bwd on "
                             "10 min take many minutes, and 10 on CUDA)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sdpa", choices=("auto", "math"), default="auto",
                        help="math forces SDPA's T x T kernel, the memory that unfused attention needs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/long_context"))
    args = parser.parse_args()
    parts, modes = args.parts.split(","), args.modes.split(",")
    if not set(parts) <= {"layer", "encoder"} or not set(modes) <= set(MODE_NAMES):
        parser.error("--parts takes layer and/or encoder, --modes train and/or infer")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no GPU")
    encoder_max = args.encoder_max_minutes
    if encoder_max is None:
        encoder_max = 10.0 if args.device == "cuda" else 2.0
    args.out.mkdir(parents=True, exist_ok=True)
    setup = {"device": args.device, "device_name": device_name(args.device), "dtype": args.dtype,
             "torch": torch.__version__, "n_threads": torch.get_num_threads(),
             "sdpa": args.sdpa, "sdpa_kernel": sdpa_choice(args.device, args.dtype, args.sdpa),
             "repeats": args.repeats, "command": shlex.join(sys.orig_argv)}
    title = (f"{setup['device_name']}, {args.dtype}, {setup['n_threads']} threads, torch {torch.__version__}, "
             f"SDPA {setup['sdpa_kernel']}")
    print(title)

    rows: list[Row] = []
    for part in parts:
        for mode in modes:
            for minutes in [m for m in MINUTES if m <= (args.max_minutes if part == "layer" else encoder_max)]:
                for mixer in PRESET:  # alternate the mixers, so drift in machine load hits both
                    job = Row(part, mixer, mode, minutes, round(minutes * 60 * FRAME_RATE))
                    result = run(job, setup)
                    job.seconds, job.peak_mib = result or (None, None)
                    rows.append(job)
                    print(f"  {part} {mode} {mixer:4s} {length_name(minutes):>6s}: "
                          + (f"{result[0]:.3f} s, {result[1]:.0f} MiB" if result else "OOM"), flush=True)
                    results = json.dumps({**setup, "rows": [asdict(r) for r in rows]}, indent=1)
                    write_text(args.out / "results.json", results)
    for part in parts:
        for mode in modes:
            report(rows, part, mode)
    targets(rows)
    plot(rows, title, args.out / "long_context.png")
    print(f"\nwrote {args.out / 'results.json'} and {args.out / 'long_context.png'}")


if __name__ == "__main__":
    main()

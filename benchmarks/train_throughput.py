"""Training throughput of the MERT objective: 95M encoder (random weights), 5 s crops, CPU.

    python benchmarks/train_throughput.py [--batch-size 4] [--steps 3] [--device cpu] [--precision float32]

Prints audio-seconds trained per wall-second, peak memory, the share of each step spent on
data (decode + resample of random crops), teachers (full-size EnCodec 24 kHz architecture with
random weights + CQT) and the model (forward, backward, AdamW), and model FLOP utilisation
(3 x forward FLOPs over the FLOP/s of a large matmul measured in the same run).
Music: Debian's wesnoth-1.16-music when installed, else generated audio.
"""

from __future__ import annotations

import argparse
import glob
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from transformers import EncodecConfig, EncodecModel

from melos.data.crops import CropBatcher, CropSource
from melos.data.manifest import scan_folder
from melos.models import load_encoder
from melos.objectives.mert_loss import MERTHeads
from melos.objectives.mert_objective import MERTObjective
from melos.teachers.cqt import CQT
from melos.teachers.encodec_tokens import EncodecTokenizer

from embed_throughput import encoder_flops, matmul_flops_per_second

MUSIC = "/usr/share/games/wesnoth/1.16/data/core/music"


def music_folder(tmp: Path) -> Path:
    if glob.glob(f"{MUSIC}/*.ogg"):
        return Path(MUSIC)
    rng = np.random.default_rng(0)
    for i in range(8):
        sf.write(tmp / f"{i}.wav", 0.1 * rng.standard_normal((44100 * 30, 2)), 44100)
    return tmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    args = parser.parse_args()
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        folder = music_folder(Path(tmp))
        rows = scan_folder(folder, progress=False).rows
        batcher = CropBatcher([CropSource("music", rows)], crop_seconds=5.0, seed=0)
        torch.manual_seed(0)
        encoder = load_encoder("mert-v1-95m")
        encoder.feature_grad_mult = 0.1
        codec = EncodecTokenizer(EncodecModel(EncodecConfig()))  # the 24 kHz architecture, random weights
        heads = MERTHeads(encoder.hidden_size, codec.n_codebooks, codec.codebook_size, final_dim=64)
        objective = MERTObjective(encoder, heads, codec, CQT()).to(device).train()
        for teacher in objective.teachers:
            teacher.to(device)
        optimizer = torch.optim.AdamW(list(encoder.parameters()) + list(heads.parameters()), lr=1e-4)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bfloat16")

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize()

        times = {"data": [], "teachers": [], "step": []}
        for step in range(args.steps + 1):  # step 0 warms up
            t0 = time.perf_counter()
            audio, _ = batcher.batch(step, args.batch_size)
            audio = audio.to(device)
            sync()
            t1 = time.perf_counter()
            with autocast:
                objective.targets(audio, encoder.n_frames(audio.shape[1]))
            sync()
            t2 = time.perf_counter()
            with autocast:
                loss = objective(audio, generator=torch.Generator().manual_seed(step))["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sync()
            t3 = time.perf_counter()
            if step:
                times["data"].append(t1 - t0)
                times["teachers"].append(t2 - t1)
                times["step"].append(t3 - t2)
        peak = matmul_flops_per_second() if device.type == "cpu" else None

    data, teachers, step = (float(np.median(times[k])) for k in ("data", "teachers", "step"))
    model = step - teachers  # the objective's step recomputes the teachers once
    total = data + step
    audio_seconds = args.batch_size * 5.0
    flops = 3 * encoder_flops(encoder.config, 5 * 24000) * args.batch_size
    print(f"MERT-95M objective, batch {args.batch_size} x 5 s, {args.device}, {args.precision}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  {audio_seconds / total:.2f} audio-seconds trained per second ({total:.2f} s per step)")
    print(f"  time per step: data {data:.2f} s ({100 * data / total:.0f}%), teachers {teachers:.2f} s "
          f"({100 * teachers / total:.0f}%), model {model:.2f} s ({100 * model / total:.0f}%)")
    print(f"  model {flops / model / 1e9:.1f} GFLOP/s" + (f" = {100 * flops / model / peak:.0f}% of matmul "
                                                        f"({peak / 1e9:.0f} GFLOP/s)" if peak else ""))
    if device.type == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(f"  peak host memory (max RSS) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()

"""Model-level embedding throughput: melos MERT vs transformers' HubertModel, same weights.

    python benchmarks/embed_throughput.py [--preset mert-v1-95m] [--seconds 30] [--runs 5]

Both models run the 95M architecture (random weights) on the same 30 s clip, alternating, in
one process. Prints audio-seconds per wall-second for each, the median speed ratio, the max
abs difference of every hidden state, and model FLOP utilisation: achieved FLOP/s over the
FLOP/s of a large float32 matmul measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import HubertModel

from melos.models import MERTConfig, load_encoder


def encoder_flops(c: MERTConfig, n_samples: int) -> float:
    """Multiply-adds x 2 of one forward pass on one clip (matmuls and convolutions only)."""
    flops, length, in_dim = 0.0, n_samples, 1
    for dim, k, s in zip(c.conv_dim, c.conv_kernel, c.conv_stride):
        length = (length - k) // s + 1
        flops += 2 * length * dim * in_dim * k
        in_dim = dim
    T, H, F = length, c.hidden_size, c.intermediate_size
    flops += 2 * T * in_dim * H  # feature projection
    flops += 2 * T * H * (H // c.num_conv_pos_embedding_groups) * c.num_conv_pos_embeddings  # positional conv
    per_layer = 2 * T * (4 * H * H + 2 * H * F) + 2 * 2 * T * T * H  # projections, FFN, QK^T and AV
    return flops + c.num_hidden_layers * per_layer


def matmul_flops_per_second(n: int = 4096, runs: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(runs))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mert-v1-95m")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    melos_model = load_encoder(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        melos_model.save_pretrained(tmp)
        hf_model = HubertModel.from_pretrained(tmp).eval()  # default attention: SDPA
    audio = torch.randn(1, int(args.seconds * melos_model.sample_rate))
    # The official processor normalises the clip; melos does it inside the model.
    normalised = (audio - audio.mean()) / torch.sqrt(audio.var(correction=0) + 1e-7)

    def run_melos():
        return melos_model(audio).hidden_states

    def run_hf():
        return hf_model(normalised, output_hidden_states=True)

    with torch.inference_mode():
        mine, theirs = run_melos(), run_hf()
        states = list(theirs.hidden_states)
        if melos_model.config.do_stable_layer_norm:
            states[-1] = theirs.last_hidden_state  # transformers 5 reports it before the final LayerNorm
        max_diff = max((a - b).abs().max().item() for a, b in zip(mine, states))
        times = {"melos": [], "transformers": []}
        for _ in range(args.runs):  # alternate, so drift in machine load hits both
            times["melos"].append(_timed(run_melos))
            times["transformers"].append(_timed(run_hf))
    peak = matmul_flops_per_second()
    flops = encoder_flops(melos_model.config, audio.shape[1])

    print(f"{args.preset}, {args.seconds:g} s clip, CPU float32, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:12s} median {med:6.2f} s  -> {args.seconds / med:5.2f} audio-s per s, "
              f"{flops / med / 1e9:6.1f} GFLOP/s = {100 * flops / med / peak:4.1f}% of matmul")
    ratios = [h / m for m, h in zip(times["melos"], times["transformers"])]
    print(f"  speed ratio melos / transformers (median of paired runs): {statistics.median(ratios):.3f}")
    print(f"  max abs difference over all {len(mine)} hidden states: {max_diff:.2e}")
    print(f"  model FLOPs per clip {flops / 1e9:.1f} G; matmul peak {peak / 1e9:.1f} GFLOP/s")


if __name__ == "__main__":
    main()

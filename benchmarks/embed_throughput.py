"""Model-level embedding throughput: melos MERT vs transformers' HubertModel, same weights, and
melos in float32, bfloat16 (weights held in bf16, `melos.models.precision`) and int8 (torch.ao
dynamic quantization of the Linear layers).

    python benchmarks/embed_throughput.py [--preset mert-v1-95m] [--seconds 30] [--runs 5]
        [--dtype float32,bfloat16,int8] [--probe-clips 30]

Every model runs the same clip, alternating, in one process. Prints audio-seconds per
wall-second for each, the speed ratio to melos float32 (median of paired runs), the smallest
per-frame cosine similarity of every hidden state to float32's, and model FLOP utilisation:
achieved FLOP/s over the FLOP/s of a large matmul of the same dtype measured in the same run
(int8 against the bf16 peak: torch has no int8 matmul to time). transformers runs float32 only.

--probe-clips N also renders N 5 s clips of each generated tradition (melos.data.synth, seed 0),
embeds them in every dtype (mean-pooled, every hidden state) and trains a logistic-regression
probe of the tradition per layer on half of them (stratified), printing each dtype's macro
one-vs-rest ROC-AUC on the other half and its largest difference from float32's over the layers.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
from transformers import HubertModel

from melos.models import MERTConfig, load_encoder
from melos.models.precision import bf16_supported, held_in_bfloat16


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


def matmul_flops_per_second(n: int = 4096, runs: int = 3, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(runs))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def variants(model, names: list[str]) -> dict:
    """The melos model in each asked-for precision (float32 is `model` itself)."""
    out = {}
    for name in names:
        if name == "float32":
            out[name] = model
        elif name == "bfloat16":
            out[name] = held_in_bfloat16(model)
        elif name == "int8":
            out[name] = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear},
                                                               dtype=torch.qint8)
        else:
            raise SystemExit(f"--dtype: unknown {name!r} (float32, bfloat16, int8)")
    return out


def frame_cosine(reference, states) -> float:
    """The smallest per-frame cosine similarity over every hidden state."""
    return min(F.cosine_similarity(a.float(), b.float(), dim=-1).min().item() for a, b in zip(reference, states))


def probe_aucs(models: dict, clips_per_tradition: int) -> dict[str, list[float]]:
    """Macro one-vs-rest ROC-AUC of a tradition probe per hidden state, for each model's embeddings."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from melos.data.synth.render import render_clip
    from melos.data.synth.traditions import TRADITIONS
    from melos.embedding.pipeline import WindowEncoder

    audio, labels = [], []
    for t, tradition in enumerate(TRADITIONS):
        for i in range(clips_per_tradition):
            audio.append(torch.from_numpy(render_clip(tradition, i)[0]))
            labels.append(t)
    labels = np.array(labels)
    train, test = train_test_split(np.arange(len(labels)), test_size=0.5, stratify=labels, random_state=0)
    aucs = {}
    for name, model in models.items():
        forward = WindowEncoder(model, list(range(model.n_hidden_states)), "mean", "cpu", "float32")
        feats = torch.cat([forward(a[None]) for a in audio]).numpy()  # [clips, layers, H]
        aucs[name] = []
        for layer in range(feats.shape[1]):
            probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
            probe.fit(feats[train, layer], labels[train])
            aucs[name].append(roc_auc_score(labels[test], probe.predict_proba(feats[test, layer]), multi_class="ovr"))
    return aucs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mert-v1-95m")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dtype", default="float32", help="comma list of float32, bfloat16, int8")
    parser.add_argument("--probe-clips", type=int, default=0,
                        help="clips per generated tradition for the probe comparison (0: none)")
    args = parser.parse_args()
    names = ["float32", *(d for d in args.dtype.split(",") if d != "float32")]
    if "bfloat16" in names and not bf16_supported():
        print("this CPU has no native bfloat16 (AVX512-BF16 or AMX): bfloat16 would be emulated, left out")
        names.remove("bfloat16")

    melos_model = load_encoder(args.preset)
    with tempfile.TemporaryDirectory() as tmp:
        melos_model.save_pretrained(tmp)
        hf_model = HubertModel.from_pretrained(tmp).eval()  # default attention: SDPA
    models = variants(melos_model, names)
    audio = torch.randn(1, int(args.seconds * melos_model.sample_rate))
    # The official processor normalises the clip; melos does it inside the model.
    normalised = (audio - audio.mean()) / torch.sqrt(audio.var(correction=0) + 1e-7)
    runners = {f"melos {n}": (lambda m=m: m(audio).hidden_states) for n, m in models.items()}
    runners["transformers float32"] = lambda: hf_model(normalised, output_hidden_states=True)

    with torch.inference_mode():
        reference = runners["melos float32"]()
        theirs = runners["transformers float32"]()
        states = list(theirs.hidden_states)
        if melos_model.config.do_stable_layer_norm:
            states[-1] = theirs.last_hidden_state  # transformers 5 reports it before the final LayerNorm
        max_diff = max((a - b).abs().max().item() for a, b in zip(reference, states))
        cosines = {f"melos {n}": frame_cosine(reference, runners[f"melos {n}"]()) for n in names}
        times = {name: [] for name in runners}
        for _ in range(args.runs):  # alternate, so drift in machine load hits every model
            for name, run in runners.items():
                times[name].append(_timed(run))
    peaks = {"float32": matmul_flops_per_second()}
    if bf16_supported():
        peaks["bfloat16"] = matmul_flops_per_second(dtype=torch.bfloat16)
    flops = encoder_flops(melos_model.config, audio.shape[1])

    print(f"{args.preset}, {args.seconds:g} s clip, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"matmul peak " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    for name, ts in times.items():
        med = statistics.median(ts)
        dtype = name.split()[-1]
        peak = peaks.get(dtype if dtype != "int8" else "bfloat16", peaks["float32"])
        ratio = statistics.median(f / t for f, t in zip(times["melos float32"], ts))
        extra = f"  min frame cosine to float32 {cosines[name]:.5f}" if name in cosines else ""
        print(f"  {name:22s} median {med:6.2f} s -> {args.seconds / med:5.2f} audio-s per s, {ratio:4.2f}x melos "
              f"float32, {flops / med / 1e9:6.1f} GFLOP/s = {100 * flops / med / peak:4.1f}% of its matmul peak{extra}")
    print(f"  max abs difference melos float32 vs transformers over all {len(reference)} hidden states: "
          f"{max_diff:.2e}")
    print(f"  model FLOPs per clip {flops / 1e9:.1f} G")
    if args.probe_clips:
        with torch.inference_mode():
            aucs = probe_aucs(models, args.probe_clips)
        print(f"  tradition probe, {args.probe_clips} clips per tradition (half train, half test), macro ROC-AUC "
              f"per hidden state:")
        for name, values in aucs.items():
            worst = max(abs(a - b) for a, b in zip(values, aucs["float32"]))
            print(f"    {name:9s} " + " ".join(f"{v:.3f}" for v in values) + f"  largest |diff| to float32 {worst:.4f}")


if __name__ == "__main__":
    main()

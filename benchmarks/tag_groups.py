"""What an encoder's clip features say about each part of a tradition: 5-fold logistic probes of
mode, metre and instrument tags, per layer, on the quickstart corpus.

    python benchmarks/tag_groups.py quickstart/runs/western/final mert-tiny --corpus quickstart/corpus

A quick diagnostic, independent of the probing protocol (no MLP, no validation split, no seeds):
every layer's hidden states are mean-pooled over each clip, standardised, and read by an
L2-regularised logistic regression per tag with 5-fold cross-validated predictions over the
first `--clips` clips of each tradition. Prints macro ROC-AUC per tag group (tags with fewer than
5 positives or negatives are skipped) for every model, tradition and layer. A group near 0.5 is
at chance; compare a trained model with the untrained preset as the floor.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from melos.audio import load
from melos.data.synth import TRADITIONS
from melos.models import load_encoder

GROUPS = ("mode", "metre", "instruments")


@torch.no_grad()
def clip_features(model: str, paths: list[Path], batch: int = 8) -> np.ndarray:
    """Mean-pooled hidden states [n_layers, n_clips, H] of equal-length clips."""
    encoder = load_encoder(model).eval()
    out = []
    for i in range(0, len(paths), batch):
        audio = torch.stack([torch.as_tensor(load(p, encoder.sample_rate)) for p in paths[i:i + batch]])
        out.append(torch.stack([h.mean(1) for h in encoder(audio).hidden_states]))
    return torch.cat(out, 1).numpy()


def group_auc(features: np.ndarray, labels: list[list[str]]) -> float:
    """Macro cross-validated ROC-AUC over the tags of one group."""
    tags = sorted({t for clip in labels for t in clip})
    aucs = []
    for tag in tags:
        y = np.array([tag in clip for clip in labels], dtype=int)
        if min(y.sum(), len(y) - y.sum()) < 5:
            continue
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        p = cross_val_predict(probe, features, y, cv=KFold(5, shuffle=True, random_state=0), method="predict_proba")
        aucs.append(roc_auc_score(y, p[:, 1]))
    return float(np.mean(aucs)) if aucs else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders or preset names")
    parser.add_argument("--corpus", default="quickstart/corpus", help="folder with the corpus manifest.jsonl")
    parser.add_argument("--clips", type=int, default=200, help="clips per tradition")
    args = parser.parse_args()
    torch.manual_seed(0)  # a preset's random weights: the same floor every run
    corpus = Path(args.corpus)
    rows = [json.loads(line) for line in (corpus / "manifest.jsonl").read_text().splitlines() if line.strip()]
    print("| model | tradition | layer | " + " | ".join(GROUPS) + " |\n|---|---|---|" + "---|" * len(GROUPS))
    for model in args.models:
        for tradition in TRADITIONS:
            mine = [r for r in rows if r["culture"] == tradition][:args.clips]
            features = clip_features(model, [corpus / r["path"] for r in mine])
            labels = {"mode": [[r["meta"]["mode"]] for r in mine], "metre": [[r["meta"]["metre"]] for r in mine],
                      "instruments": [r["meta"]["instruments"] for r in mine]}
            for layer, layer_features in enumerate(features):
                cells = " | ".join(f"{group_auc(layer_features, labels[g]):.2f}" for g in GROUPS)
                print(f"| {model} | {tradition} | {layer} | {cells} |", flush=True)


if __name__ == "__main__":
    main()

"""A trained probe saved by `melos probe`, to tag new audio with it (`melos sense --probe`).

One safetensors file per model x task (OUT/probes/<index>-<task>.safetensors) holds the chosen
member's best-on-validation MLP of the first seed and the training split's standardisation:

    w1 [H, hidden], b1 [hidden], w2 [hidden, C], b2 [C]    the MLP (dropout off)
    mix [n_layers]                                          only for a weighted-sum member
    mean, std [n_layers, 1, H]                              features -> (x - mean) / (std + 1e-6)

and as metadata (JSON strings) the task's name, type, labels, layer choice, window, hop and the
hash of the encoder whose features it was trained on (`features.model_hash`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from ..models.hf_layout import CheckpointError
from ..utils.atomic import atomic_file
from .probe import WEIGHTED, outputs

FORMAT = "melos-probe"
FORMAT_VERSION = "1"
STD_EPS = 1e-6  # as protocol.probe_task's standardisation
TENSORS = ("w1", "b1", "w2", "b2", "mean", "std")
METADATA = ("task", "type", "labels", "layer", "window", "hop", "model_hash")


@dataclass
class SavedProbe:
    """One trained probe: its weights, the standardisation it was trained with, and what it means.

    layer: the hidden state it reads, or `probe.WEIGHTED` (a softmax-weighted sum with `mix`).
    labels: output names in order (the task's vocabulary; key names for a key task).
    window, hop: seconds of audio per feature window, and between window starts.
    """

    task: str
    type: str
    labels: list[str]
    layer: int
    window: float
    hop: float
    model_hash: str
    weights: dict[str, torch.Tensor]  # w1, b1, w2, b2 (+ mix)
    mean: torch.Tensor  # [n_layers, 1, H]
    std: torch.Tensor  # [n_layers, 1, H]

    def save(self, path: str | Path) -> None:
        """Write the probe atomically (see the module docstring for the layout)."""
        metadata = {"format": FORMAT, "version": FORMAT_VERSION, "task": self.task, "type": self.type,
                    "labels": json.dumps(self.labels), "layer": json.dumps(self.layer),
                    "window": json.dumps(self.window), "hop": json.dumps(self.hop), "model_hash": self.model_hash}
        tensors = {**self.weights, "mean": self.mean, "std": self.std}
        with atomic_file(Path(path)) as tmp:
            save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> SavedProbe:
        """Read a probe file; a missing file, tensor or metadata key, or a file `melos probe`
        did not write, is a `CheckpointError` (a ValueError) naming the file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such probe file (melos probe writes OUT/probes/*.safetensors)")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: not a safetensors file ({err})") from None
        if metadata.get("format") != FORMAT:
            raise CheckpointError(f"{path}: not a probe saved by melos probe (metadata format is "
                                  f"{metadata.get('format')!r})")
        missing = [k for k in TENSORS if k not in tensors] + [k for k in METADATA if k not in metadata]
        layer = json.loads(metadata.get("layer", "0"))
        if layer == WEIGHTED and "mix" not in tensors:
            missing.append("mix")
        if missing:
            raise CheckpointError(f"{path}: probe file lacks {', '.join(missing)}")
        weights = {k: tensors[k] for k in ("w1", "b1", "w2", "b2", "mix") if k in tensors}
        return cls(metadata["task"], metadata["type"], json.loads(metadata["labels"]), layer,
                   json.loads(metadata["window"]), json.loads(metadata["hop"]), metadata["model_hash"], weights,
                   tensors["mean"], tensors["std"])

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Per-window outputs [W, C] from raw features [n_layers, W, H] (every hidden state,
        mean-pooled per window): probabilities (sigmoid for multilabel, softmax for multiclass and
        key), predictions for regression. Standardised and read exactly as in training."""
        x = torch.as_tensor(features, dtype=torch.float32)
        if x.ndim != 3 or x.shape[0] != self.mean.shape[0] or x.shape[2] != self.mean.shape[2]:
            raise ValueError(f"probe {self.task!r} expects features [{self.mean.shape[0]}, W, "
                             f"{self.mean.shape[2]}], got {list(x.shape)}")
        x = (x - self.mean) / (self.std + STD_EPS)
        if self.layer == WEIGHTED:
            h = torch.einsum("l,lwh->wh", torch.softmax(self.weights["mix"], dim=-1), x)
        else:
            h = x[self.layer]
        logits = torch.relu(h @ self.weights["w1"] + self.weights["b1"]) @ self.weights["w2"] + self.weights["b2"]
        return outputs(self.type, logits[None])[0]

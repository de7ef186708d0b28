"""Run by test_distributed under torchrun (2 CPU processes, gloo): a short training run."""

import dataclasses
import sys

import torch
import torch.distributed as dist

from melos.models import PRESETS, MERTEncoder
from melos.objectives.mert_loss import MERTHeads
from melos.objectives.mert_objective import MERTObjective, MERTObjectiveConfig
from melos.teachers.cqt import CQT
from melos.teachers.encodec_tokens import EncodecTokenizer
from melos.training.trainer import Stage, Trainer


class NoiseBatches:
    def batch(self, step, batch_size):
        g = torch.Generator().manual_seed(step)
        return 0.1 * torch.randn(batch_size, 8000, generator=g), ["noise"] * batch_size


def build() -> MERTObjective:
    """Deterministic across processes: no dropout, no layerdrop, no in-batch mixture."""
    torch.manual_seed(0)
    config = dataclasses.replace(PRESETS["mert-tiny"], hidden_dropout=0.0, attention_dropout=0.0,
                                 feat_proj_dropout=0.0, layerdrop=0.0)
    encoder = MERTEncoder(config)
    codec = EncodecTokenizer.tiny()
    heads = MERTHeads(encoder.hidden_size, codec.n_codebooks, codec.codebook_size, final_dim=16)
    return MERTObjective(encoder, heads, codec, CQT(), MERTObjectiveConfig(mixture_prob=0.0))


def run(out: str) -> float:
    """Train; returns a checksum of the trained weights (equal on every process under DDP)."""
    stage = Stage("all", steps=3, lr_max=2e-3, lr_min=2e-4, warmup_fraction=0.0, batch_size=4)
    objective = build()
    Trainer(objective, lambda s: NoiseBatches(), [stage], out, progress=False).run()
    return sum(p.double().sum().item() for p in objective.parameters())


if __name__ == "__main__":
    dist.init_process_group("gloo")
    try:
        checksum = run(sys.argv[1])
        with open(f"{sys.argv[1]}/checksum.{dist.get_rank()}", "w") as f:
            f.write(repr(checksum))
    finally:
        dist.destroy_process_group()

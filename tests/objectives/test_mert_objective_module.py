"""The composed MERT objective: targets from clean audio, finite losses, gradients, learning."""

import torch

from melos.models import load_encoder
from melos.objectives.mert_loss import MERTHeads
from melos.objectives.mert_objective import MERTObjective, MERTObjectiveConfig
from melos.teachers.cqt import CQT
from melos.teachers.encodec_tokens import EncodecTokenizer


class Recording(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, audio):
        self.seen.append(audio.clone())
        return self.inner(audio)


def make_objective(**config):
    torch.manual_seed(0)
    encoder = load_encoder("mert-tiny").train()
    codec = EncodecTokenizer.tiny()
    heads = MERTHeads(encoder.hidden_size, codec.n_codebooks, codec.codebook_size, final_dim=16)
    return MERTObjective(encoder, heads, Recording(codec), Recording(CQT()), MERTObjectiveConfig(**config))


def test_targets_come_from_the_clean_audio_and_losses_are_finite():
    objective = make_objective(mixture_prob=1.0, n_predicted_codebooks=4)
    audio = 0.1 * torch.randn(3, 24000)
    metrics = objective(audio, generator=torch.Generator().manual_seed(0))
    for teacher in objective.teachers:
        assert len(teacher.seen) == 1 and torch.equal(teacher.seen[0], audio)
    assert all(torch.isfinite(v).all() for v in metrics.values())
    assert sum(k.startswith("acc/codebook_") for k in metrics) == 4
    assert 0.3 < metrics["mask/fraction"].item() < 0.8
    metrics["loss"].backward()
    assert objective.heads.codewords.grad.abs().sum() > 0
    assert objective.encoder.masked_spec_embed.grad.abs().sum() > 0
    assert objective.encoder.feature_extractor.conv_layers[0].conv.weight.grad.abs().sum() > 0


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    objective = make_objective(mixture_prob=0.0)
    audio = 0.1 * torch.randn(2, 12000)
    params = list(objective.encoder.parameters()) + list(objective.heads.parameters())
    optimizer = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(15):
        metrics = objective(audio, generator=torch.Generator().manual_seed(0))  # same mask every step
        optimizer.zero_grad()
        metrics["loss"].backward()
        optimizer.step()
        losses.append(metrics["loss"].item())
    assert losses[-1] < 0.7 * losses[0]

"""The efficient encoders' objective: 400 ms segment masking, masked-frame CE + standardised mel MSE."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from melos.models.encoder import Encoder, EncoderOutput
from melos.objectives.rpq_objective import RPQHeads, RPQObjective, RPQObjectiveConfig
from melos.objectives.segment_masking import mask_segments
from melos.teachers.random_projection import MelTokenizer

SAMPLE_RATE, HOP, SEGMENT = 24000, 960, 9600
# 2 s less one mel hop: the encoder has 49 frames, the tokenizer 50, so cropping is exercised.
N_SAMPLES = 2 * SAMPLE_RATE - 240


class StubEncoder(Encoder):
    """Strided conv to 25 Hz, then a small conv over frames so masked frames see some context."""

    sample_rate, frame_rate, hidden_size = SAMPLE_RATE, 25.0, 16
    n_hidden_states, receptive_field = 1, HOP

    def __init__(self):
        super().__init__()
        self.frontend = nn.Conv1d(1, self.hidden_size, kernel_size=HOP, stride=HOP)
        self.context = nn.Conv1d(self.hidden_size, self.hidden_size, kernel_size=5, padding=2)

    def forward(self, audio: torch.Tensor) -> EncoderOutput:
        x = F.gelu(self.frontend(audio[:, None]))  # [B, H, T]
        return EncoderOutput(hidden_states=(self.context(x).transpose(1, 2),))  # [B, T, H]

    def n_frames(self, n_samples: int) -> int:
        return (n_samples - HOP) // HOP + 1

    def write_files(self, folder, *, pytorch_bin=False):
        raise NotImplementedError


def noise(batch_size: int, n_samples: int = N_SAMPLES, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(batch_size, n_samples, generator=torch.Generator().manual_seed(seed))


FIT_AUDIO = noise(4, seed=100)


def make_objective(fitted: bool = True, **config) -> RPQObjective:
    torch.manual_seed(0)
    tokenizer = MelTokenizer(codebook_size=64)
    if fitted:
        tokenizer.fit_stats([FIT_AUDIO])
    encoder = StubEncoder()
    return RPQObjective(encoder, RPQHeads(encoder.hidden_size, 64, 512), tokenizer, RPQObjectiveConfig(**config))


def sample_mask(segment_mask: torch.Tensor, n_samples: int, segment_length: int) -> torch.Tensor:
    return segment_mask.repeat_interleave(segment_length, dim=1)[:, :n_samples]


# --- segment masking ---------------------------------------------------------------------------

@pytest.mark.parametrize("hop_length", [960.0, 700.0])
def test_chosen_segments_are_zero_the_rest_untouched_and_frames_follow(hop_length):
    N = 5 * SEGMENT + 1234  # a short last segment
    audio = noise(8, N) + 1.0  # never zero by chance
    T = int(N // hop_length)
    out = mask_segments(audio, T, hop_length, SEGMENT, 0.3, torch.Generator().manual_seed(0))
    assert out.segment_mask.shape == (8, 6) and out.frame_mask.shape == (8, T)
    samples = sample_mask(out.segment_mask, N, SEGMENT)
    assert torch.all(out.audio[samples] == 0)
    assert torch.equal(out.audio[~samples], audio[~samples])
    centres = ((torch.arange(T) + 0.5) * hop_length).long()
    assert torch.equal(out.frame_mask, samples[:, centres])
    if hop_length == HOP:  # the hop divides the segment: whole frame in a chosen segment, or none of it
        spans = samples[:, : T * HOP].reshape(8, T, HOP)
        assert torch.equal(out.frame_mask, spans.all(-1)) and torch.equal(out.frame_mask, spans.any(-1))


def test_about_a_fifth_of_segments_are_masked():
    out = mask_segments(torch.ones(500, 2000), 200, 10.0, 100, 0.2, torch.Generator().manual_seed(0))
    # 10,000 segments: std of the fraction 0.004; the at-least-one rule adds about 0.8^20 per clip
    assert abs(out.segment_mask.float().mean().item() - 0.2) < 0.03
    assert abs(out.frame_mask.float().mean().item() - 0.2) < 0.03


def test_same_seed_same_mask_and_fresh_draws_across_calls():
    audio = torch.ones(16, 10 * SEGMENT)
    args = (audio, 100, float(HOP), SEGMENT, 0.2)
    first = mask_segments(*args, torch.Generator().manual_seed(3))
    assert torch.equal(first.segment_mask, mask_segments(*args, torch.Generator().manual_seed(3)).segment_mask)
    generator = torch.Generator().manual_seed(3)
    a, b = mask_segments(*args, generator), mask_segments(*args, generator)
    assert not torch.equal(a.segment_mask, b.segment_mask)


def test_every_clip_has_a_masked_frame():
    generator = torch.Generator().manual_seed(0)
    none = mask_segments(torch.ones(64, 3 * SEGMENT), 30, float(HOP), SEGMENT, 0.0, generator)
    assert torch.all(none.segment_mask.sum(1) == 1) and torch.all(none.frame_mask.sum(1) == 10)
    # 1 s clips: three segments, the last a half one; the guarantee holds for every clip
    short = mask_segments(torch.ones(256, SAMPLE_RATE), 25, float(HOP), SEGMENT, 0.2, generator)
    assert torch.all(short.frame_mask.any(1))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mask_prob"):
        mask_segments(torch.ones(1, SEGMENT), 10, float(HOP), SEGMENT, 1.5)
    with pytest.raises(ValueError, match="no encoder frames"):
        mask_segments(torch.ones(1, 100), 0, float(HOP), SEGMENT)


# --- the objective -----------------------------------------------------------------------------

def manual(objective: RPQObjective, audio: torch.Tensor, seed: int):
    """Recompute everything from public pieces: the clean-audio tokens, hand-fitted statistics, and
    the heads applied to every frame, so that only the masked-frame selection picks the loss."""
    (tokenizer,) = objective.teachers
    T = objective.encoder.n_frames(audio.shape[1])
    masked_audio, mask = objective.mask(audio, T, torch.Generator().manual_seed(seed))
    hidden = objective.encoder(masked_audio).last_hidden_state  # [B, T, H]
    prediction = objective.heads(hidden)
    tokens = tokenizer(audio)[:, :T]
    fit = tokenizer.features(FIT_AUDIO).reshape(-1, 512).double()
    mean, std = fit.mean(0), fit.std(0, unbiased=False)
    target = ((tokenizer.features(audio)[:, :T].double() - mean) / std).float()
    return mask, prediction, tokens, target


def test_token_loss_is_cross_entropy_on_masked_frames_only():
    objective = make_objective(mel_weight=0.5)
    audio = noise(4)
    metrics = objective(audio, generator=torch.Generator().manual_seed(7))
    mask, prediction, tokens, _ = manual(objective, audio, 7)
    assert mask.shape == (4, 49) and mask.any(1).all() and not mask.all()
    expected = F.cross_entropy(prediction.token_logits[mask], tokens[mask])
    torch.testing.assert_close(metrics["loss/tokens"], expected)
    everywhere = F.cross_entropy(prediction.token_logits.flatten(0, 1), tokens.flatten())
    assert not torch.isclose(metrics["loss/tokens"], everywhere)  # the test can tell the difference
    accuracy = (prediction.token_logits[mask].argmax(-1) == tokens[mask]).float().mean()
    torch.testing.assert_close(metrics["acc/tokens"], accuracy)
    torch.testing.assert_close(metrics["mask/fraction"], mask.float().mean())
    torch.testing.assert_close(metrics["loss"], metrics["loss/tokens"] + 0.5 * metrics["loss/mel"])


def test_mel_loss_is_standardised_mse_on_masked_frames_only():
    objective = make_objective()
    audio = noise(4)
    metrics = objective(audio, generator=torch.Generator().manual_seed(8))
    mask, prediction, _, target = manual(objective, audio, 8)
    expected = (prediction.mel[mask] - target[mask]).square().mean()
    torch.testing.assert_close(metrics["loss/mel"], expected, rtol=1e-4, atol=1e-5)
    assert abs(target.mean().item()) < 0.5 and 0.5 < target.std().item() < 2  # standardised: O(1)


def test_targets_come_from_the_clean_audio(monkeypatch):
    objective = make_objective()
    (tokenizer,) = objective.teachers
    seen, features = [], tokenizer.features
    monkeypatch.setattr(tokenizer, "features", lambda audio: seen.append(audio.clone()) or features(audio))
    audio = noise(2)
    objective(audio, generator=torch.Generator().manual_seed(0))
    assert len(seen) == 1 and torch.equal(seen[0], audio)


def test_clip_seeds_give_each_clip_its_own_mask_whatever_the_batch():
    objective = make_objective()
    audio = noise(3)
    _, mask = objective.mask(audio, 49, clip_seeds=[11, 12, 13])
    _, alone = objective.mask(audio[1:2], 49, clip_seeds=[12])
    assert torch.equal(mask[1:2], alone)
    metrics = objective(audio, clip_seeds=[11, 12, 13])
    torch.testing.assert_close(metrics["mask/fraction"], mask.float().mean())


def test_a_few_steps_on_one_batch_reduce_the_loss():
    objective = make_objective()
    audio = noise(2)
    optimizer = torch.optim.Adam(objective.parameters(), lr=2e-2)
    losses = []
    for _ in range(12):
        loss = objective(audio, generator=torch.Generator().manual_seed(0))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
    assert all(name.startswith(("encoder.", "heads.")) for name in objective.state_dict())


def test_unfitted_tokenizer_is_an_error():
    objective = make_objective(fitted=False)
    with pytest.raises(RuntimeError, match="not fitted"):
        objective(noise(1), generator=torch.Generator().manual_seed(0))


def test_mismatched_heads_are_refused():
    tokenizer, encoder = MelTokenizer(codebook_size=64), StubEncoder()
    with pytest.raises(ValueError, match="heads predict"):
        RPQObjective(encoder, RPQHeads(encoder.hidden_size, 128, 512), tokenizer)

import dataclasses

import pytest
import torch
from safetensors.torch import load_file, save_file

from melos.models import CheckpointError, load_encoder
from melos.models.efficient import PRESETS, EfficientEncoder

TINY = PRESETS["branchformer-sm-tiny"]


def tiny(**changes) -> EfficientEncoder:
    torch.manual_seed(0)
    return EfficientEncoder(dataclasses.replace(TINY, dropout=0.0, **changes)).eval()


@pytest.mark.parametrize("front_end", ["waveform", "mel"])
@pytest.mark.parametrize("family", ["branchformer", "conformer"])
def test_hidden_states_at_25_hz(family, front_end):
    model = tiny(family=family, front_end=front_end)
    for n in (1040 if front_end == "waveform" else 4000, 24000, 37123):
        out = model(torch.randn(2, n))
        assert len(out.hidden_states) == model.n_hidden_states == TINY.num_layers + 1
        assert all(h.shape == (2, model.n_frames(n), TINY.dim) for h in out.hidden_states)
    assert model.frame_rate == 25.0 and model.sample_rate == 24000


@pytest.mark.parametrize("mixer", ["attention", "summary-mixing"])
def test_a_padded_clip_gives_its_unpadded_frames(mixer):
    model = tiny(mixer=mixer, family="conformer")
    clips = [torch.randn(n) for n in (24000, 13000, 5000)]
    batch = torch.stack([torch.nn.functional.pad(c, (0, 24000 - len(c))) for c in clips])
    out = model(batch, lengths=torch.tensor([len(c) for c in clips]))
    for b, clip in enumerate(clips):
        alone = model(clip[None])
        T = model.n_frames(len(clip))
        for layer in range(model.n_hidden_states):
            torch.testing.assert_close(out.hidden_states[layer][b, :T], alone.hidden_states[layer][0],
                                       rtol=1e-4, atol=1e-4)


def test_save_and_load_round_trip(tmp_path):
    model = tiny(front_end="mel", family="conformer", mixer="attention")
    model.save_pretrained(tmp_path / "enc")
    audio = torch.randn(1, 12000)
    for source in (tmp_path / "enc", tmp_path / "enc" / "model.safetensors"):
        loaded = load_encoder(source)
        assert loaded.config == model.config
        torch.testing.assert_close(loaded(audio).last_hidden_state, model(audio).last_hidden_state)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind


def test_missing_tensor_is_named(tmp_path):
    tiny().save_pretrained(tmp_path / "enc")
    file = tmp_path / "enc" / "model.safetensors"
    from safetensors import safe_open
    with safe_open(file, framework="pt") as f:
        meta = f.metadata()
    state = load_file(file)
    state.pop("norm.weight")
    save_file(state, file, metadata=meta)
    with pytest.raises(CheckpointError, match="missing tensors: norm.weight"):
        load_encoder(file)


def test_foreign_safetensors_is_a_clear_error(tmp_path):
    save_file({"w": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="no melos encoder config"):
        load_encoder(tmp_path / "model.safetensors")


def test_summary_mixing_saves_what_it_should_per_layer():
    """Attention: 4 D^2 + 4 D weights; SummaryMixing (width D/2): f, s (D x D/2 each) and c (D x D)."""
    def count(name):
        with torch.device("meta"):
            return sum(p.numel() for p in EfficientEncoder(PRESETS[name]).parameters())
    D, L = 1024, 12
    attention, summary = 4 * D * D + 4 * D, 2 * (D * D // 2 + D // 2) + (D * D + D)
    for family in ("branchformer", "conformer"):
        assert count(f"{family}-12x1024") - count(f"{family}-sm-12x1024") == L * (attention - summary)

"""The HEAR module: API shapes, timestamps, chunking of long clips."""

import pytest
import torch

from melos.embedding import hear


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return hear.load_model("mert-tiny", device="cpu")


def test_attributes(model):
    assert model.sample_rate == 24000
    assert model.scene_embedding_size == model.timestamp_embedding_size == 64


def test_timestamp_embeddings(model):
    audio = torch.randn(2, 24000)
    emb, times = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape == (2, 74, 64) and times.shape == (2, 74)
    # centre of frame t's 400-sample receptive field: (320 t + 200) / 24 kHz
    assert times[0, 0].item() == pytest.approx(200 / 24)
    assert torch.allclose(times[1, 1:] - times[1, :-1], torch.full((73,), 320 / 24))
    with torch.no_grad():
        states = model.encoder(audio).hidden_states
    assert torch.allclose(emb, torch.stack(states).mean(0), atol=1e-6)
    assert torch.allclose(hear.get_scene_embeddings(audio, model), emb.mean(1), atol=1e-6)


def test_single_layer_and_long_clips(model, monkeypatch):
    last = hear.HearModel(model.encoder, layer=-1)
    monkeypatch.setattr(hear, "CHUNK_SECONDS", 1.0)
    audio = torch.randn(1, 24000 * 2 + 300)  # two 1 s chunks; the 300-sample tail joins the second
    emb, times = hear.get_timestamp_embeddings(audio, last)
    with torch.no_grad():
        first = model.encoder(audio[:, :24000]).hidden_states[-1]
        second = model.encoder(audio[:, 24000:]).hidden_states[-1]
    assert torch.allclose(emb, torch.cat([first, second], dim=1), atol=1e-6)
    assert times.shape == emb.shape[:2]
    with pytest.raises(ValueError, match="layer"):
        hear.HearModel(model.encoder, layer=99)


def test_efficient_encoder_timestamps_at_25_hz():
    torch.manual_seed(0)
    model = hear.load_model("branchformer-sm-tiny", device="cpu")
    emb, times = hear.get_timestamp_embeddings(torch.randn(1, 24000), model)
    assert emb.shape == (1, model.encoder.n_frames(24000), 64)
    # centre of frame t's 1,040-sample receptive field: (960 t + 520) / 24 kHz
    assert times[0, 0].item() == pytest.approx(520 / 24)
    assert torch.allclose(times[0, 1:] - times[0, :-1], torch.full((emb.shape[1] - 1,), 40.0))

"""EnCodec teacher tokens: shapes, alignment with the student, equality with transformers, loading, causality."""

import json
import math
import re
import socket

import pytest
import torch
from transformers import EncodecModel

import melos
from melos.teachers.encodec_tokens import EncodecTokenizer, align_tokens

LENGTHS = [400, 719, 24000, 24000 + 123, 5 * 24000 + 7]


@pytest.fixture(scope="module")
def tokenizer() -> EncodecTokenizer:
    return EncodecTokenizer.tiny(seed=0)


def music_like(batch: int, n: int, seed: int = 0) -> torch.Tensor:
    """Noise whose loudness changes every 0.1 s, so tokens vary over time: [B, N]."""
    g = torch.Generator().manual_seed(seed)
    gains = (0.1 * torch.randn(batch, n // 2400 + 1, generator=g).exp()).repeat_interleave(2400, dim=-1)
    return gains[:, :n] * torch.randn(batch, n, generator=g)


def student_frames(n: int) -> int:
    return (n - 400) // 320 + 1


@pytest.mark.parametrize("n", LENGTHS)
def test_shapes_values_and_alignment(tokenizer, n):
    tokens = tokenizer(music_like(2, n, seed=n))
    assert tokens.dtype == torch.int64
    assert tokens.shape == (2, 8, math.ceil(n / 320)) == (2, tokenizer.n_codebooks, tokenizer.n_frames(n))
    assert 0 <= tokens.min() and tokens.max() < tokenizer.codebook_size == 64
    aligned = align_tokens(tokens, student_frames(n))
    assert aligned.shape == (2, 8, student_frames(n))
    assert torch.equal(aligned, tokens[..., : student_frames(n)])


def test_alignment_matches_student_encoder(tokenizer):
    n = 24000 + 123
    encoder = melos.load_encoder("mert-tiny")
    assert align_tokens(tokenizer(music_like(1, n)), encoder.n_frames(n)).shape[-1] == encoder.n_frames(n) == 75


def test_attributes(tokenizer):
    t = tokenizer
    assert (t.sample_rate, t.frame_rate, t.n_codebooks, t.codebook_size) == (24000, 75, 8, 64)


def test_align_tokens_rejects_too_few_frames():
    with pytest.raises(ValueError, match="codec gave 3 frames but the encoder has 4"):
        align_tokens(torch.zeros(1, 8, 3, dtype=torch.long), 4)


def test_equals_transformers_reference_even_under_autocast(tokenizer):
    audio = music_like(2, 3 * 24000 + 11, seed=1)
    reference_model = EncodecModel(tokenizer.model.config).eval()
    reference_model.load_state_dict(tokenizer.model.state_dict())
    with torch.no_grad():
        reference = reference_model.encode(audio[:, None, :], bandwidth=3.6).audio_codes[0]
    assert len(reference[0, 0].unique()) > 4  # tokens vary, so a mismatch would show
    assert torch.equal(tokenizer(audio), reference)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 flips about a third of the tokens
        assert torch.equal(tokenizer(audio), reference)


def test_round_trip_through_local_directory(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    tokenizer.model.save_pretrained(tmp_path)
    loaded = EncodecTokenizer.from_pretrained(tmp_path, bandwidth=3.6)
    audio = music_like(2, 24000 + 123, seed=2)
    assert torch.equal(loaded(audio), tokenizer(audio))
    with pytest.raises(ValueError, match="bandwidth 6.0"):
        EncodecTokenizer.from_pretrained(tmp_path)  # the tiny model only has 3.6 kbps


def test_loading_errors_name_the_path(tmp_path):
    missing = tmp_path / "no_such_encodec"
    with pytest.raises(FileNotFoundError, match="no_such_encodec"):
        EncodecTokenizer.from_pretrained(missing)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "hubert"}))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: config.json has model_type 'hubert'")):
        EncodecTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "encodec"}))
    with pytest.raises(FileNotFoundError, match="no weights"):
        EncodecTokenizer.from_pretrained(tmp_path)


def test_causal(tokenizer):
    """Codec frame t sees samples < 320 (t + 1) only: changing audio from sample m on keeps frames < m // 320."""
    audio = music_like(1, 2 * 24000, seed=3)
    m = 24000 + 100
    changed = audio.clone()
    changed[:, m:] = music_like(1, 2 * 24000 - m, seed=4)
    before, after = tokenizer(audio), tokenizer(changed)
    assert torch.equal(before[..., : m // 320], after[..., : m // 320])
    assert not torch.equal(before[..., m // 320:], after[..., m // 320:])


def test_frozen_deterministic_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = EncodecTokenizer.tiny(seed=0), EncodecTokenizer.tiny(seed=0), EncodecTokenizer.tiny(seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not any(p.requires_grad for p in a.parameters())
    assert not a.train().training and not a.model.training
    audio = music_like(1, 24000)
    assert torch.equal(a(audio), b(audio)) and not torch.equal(a(audio), c(audio))
    with torch.inference_mode():
        assert torch.equal(a(audio), b(audio))


def test_batch_equals_single(tokenizer):
    audio = music_like(2, 24000 + 123, seed=5)
    batch = tokenizer(audio)
    assert torch.equal(batch[0], tokenizer(audio[:1])[0]) and torch.equal(batch[1], tokenizer(audio[1:])[0])
    assert not torch.equal(batch[0], batch[1])

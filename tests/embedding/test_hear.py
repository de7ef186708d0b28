"""The HEAR module: API shapes, 48 kHz input, timestamps, chunking, equality with `melos embed`,
and hear-eval-kit's own validator."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.embedding import Embeddings, embed, hear, read_index

STUBS = Path(__file__).parents[1] / "stubs"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return hear.load_model("mert-tiny", device="cpu")


def test_attributes(model):
    assert model.encoder.sample_rate == 24000
    assert model.sample_rate == 48000
    assert model.scene_embedding_size == model.timestamp_embedding_size == 64


@pytest.mark.parametrize("encoder_rate, expected", [(16000, 16000), (24000, 48000), (44100, 44100),
                                                    (8000, 16000), (11025, 22050), (32000, 44100), (96000, 48000)])
def test_hear_sample_rate(encoder_rate, expected):
    assert hear.hear_sample_rate(encoder_rate) == expected


def test_timestamp_embeddings(model):
    audio = torch.randn(2, 48000)  # 1 s at 48 kHz -> 24,000 encoder samples -> 74 frames
    emb, times = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape == (2, 74, 64) and times.shape == (2, 74)
    # centre of frame t's 400-sample receptive field at 24 kHz: (320 t + 200) / 24 kHz, in ms of the input
    assert times[0, 0].item() == pytest.approx(200 / 24)
    assert times[1, 73].item() == pytest.approx((320 * 73 + 200) / 24)
    assert torch.allclose(times[1, 1:] - times[1, :-1], torch.full((73,), 320 / 24))
    with torch.no_grad():
        states = model.encoder(model.resample(audio)).hidden_states
    assert torch.allclose(emb, torch.stack(states).mean(0), atol=1e-6)
    assert torch.allclose(hear.get_scene_embeddings(audio, model), emb.mean(1), atol=1e-6)


def test_resample_matches_soxr_per_clip(model):
    import soxr

    audio = torch.randn(3, 4801)
    out = model.resample(audio)
    assert out.dtype == torch.float32 and out.shape == (3, 2401)
    assert torch.equal(out[1], torch.from_numpy(soxr.resample(audio[1].numpy(), 48000, 24000, quality="HQ")))


def test_single_layer_and_long_clips(model, monkeypatch):
    last = hear.HearModel(model.encoder, layer=-1)
    monkeypatch.setattr(hear, "CHUNK_SECONDS", 1.0)
    audio = torch.randn(1, 48000 * 2 + 600)  # two 1 s chunks; the 300-sample (24 kHz) tail joins the second
    emb, times = hear.get_timestamp_embeddings(audio, last)
    resampled = last.resample(audio)
    with torch.no_grad():
        first = model.encoder(resampled[:, :24000]).hidden_states[-1]
        second = model.encoder(resampled[:, 24000:]).hidden_states[-1]
    assert torch.allclose(emb, torch.cat([first, second], dim=1), atol=1e-6)
    assert times.shape == emb.shape[:2]
    with pytest.raises(ValueError, match="layer"):
        hear.HearModel(model.encoder, layer=99)


def test_same_embeddings_as_melos_embed(model, tmp_path, monkeypatch):
    """HEAR on 48 kHz samples == `melos embed` on a 48 kHz file of the same samples.

    Correspondence: HEAR's chunks of CHUNK_SECONDS are embed's windows with window == hop (both
    cut from the whole clip resampled by soxr "HQ"), HEAR's layer "mean" is the mean over embed's
    `layers="all"` rows, its timestamp embeddings are embed's `pool="none"` frames, and its scene
    embedding is their time average. Three whole 1 s windows, so embed drops no tail.
    """
    monkeypatch.setattr(hear, "CHUNK_SECONDS", 1.0)
    samples = (0.3 * np.random.default_rng(0).standard_normal(3 * 48000)).astype(np.float32)
    sf.write(tmp_path / "clip.wav", samples, 48000, subtype="FLOAT")
    summary = embed(model.encoder, tmp_path / "clip.wav", tmp_path / "out", layers="all", window=1.0,
                    pool="none", progress=False)
    assert summary.ok and summary.n_done == 1
    (row,) = read_index(tmp_path / "out" / "index.jsonl").values()
    stored = Embeddings.load(tmp_path / "out" / row.output)
    assert stored.window_frames.tolist() == [74, 74, 74]
    frames = stored.embeddings.mean(0)  # [T, H], mean over all hidden states

    audio = torch.from_numpy(samples)[None]
    emb, times = hear.get_timestamp_embeddings(audio, model)
    assert emb.shape == (1, 3 * 74, 64) and times.shape == (1, 3 * 74)
    assert torch.allclose(emb[0], frames, atol=1e-5)
    assert torch.allclose(hear.get_scene_embeddings(audio, model)[0], frames.mean(0), atol=1e-5)


def test_hearvalidator_passes():
    """hear-eval-kit's API check, run as HEAR runs it, on CPU with the mert-tiny preset.

    `make install` installs hearvalidator (without its tensorflow dependency). A subprocess, so
    the tensorflow stand-in (tests/stubs) never reaches this process.
    """
    assert importlib.util.find_spec("hearvalidator"), "pip install --no-deps hearvalidator==2021.0.2 (make install does)"
    path = os.pathsep.join(filter(None, [str(STUBS), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    code = ("from hearvalidator.validate import ValidateModel; "
            "ValidateModel('melos.embedding.hear', 'mert-tiny', device='cpu')(); print('Looks good!')")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Model sample rate is: 48000" in result.stdout and "Looks good!" in result.stdout


def test_efficient_encoder_timestamps_at_25_hz():
    torch.manual_seed(0)
    model = hear.load_model("branchformer-sm-tiny", device="cpu")
    assert model.sample_rate == 48000
    emb, times = hear.get_timestamp_embeddings(torch.randn(1, 48000), model)
    assert emb.shape == (1, model.encoder.n_frames(24000), 64)
    # centre of frame t's 1,040-sample receptive field: (960 t + 520) / 24 kHz
    assert times[0, 0].item() == pytest.approx(520 / 24)
    assert torch.allclose(times[0, 1:] - times[0, :-1], torch.full((emb.shape[1] - 1,), 40.0))

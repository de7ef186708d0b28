"""melos embed: outputs equal an independent per-window computation; bad files; resume; CLI."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.audio import load
from melos.cli import main
from melos.embedding import Embeddings, embed, read_index
from melos.embedding.pipeline import file_windows, parse_layers
from melos.models import load_encoder


@pytest.fixture(scope="module", params=["mert-tiny", "branchformer-sm-tiny"])
def encoder(request):
    torch.manual_seed(0)
    return load_encoder(request.param)


@pytest.fixture
def music(tmp_path):
    """A folder with good files of several rates, channels and formats, and two bad ones."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "a.wav", 0.3 * rng.standard_normal(int(2.5 * 24000)).astype(np.float32), 24000)
    sf.write(folder / "sub" / "b.flac", 0.3 * rng.standard_normal((int(1.7 * 44100), 2)), 44100)
    sf.write(folder / "c.ogg", 0.3 * rng.standard_normal(int(3.2 * 22050)), 22050)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("not audio at all")
    (folder / "readme.txt").write_text("ignored: not an audio extension")
    return folder


def reference(encoder, path, window, hop, layers):
    """Per window, one at a time, from the whole decoded file: what a user would write by hand."""
    audio = load(path, 24000)
    duration = sf.info(path).duration
    out = []
    for start in file_windows(duration, window, hop):
        clip = audio[round(start * 24000): round(start * 24000) + round(window * 24000)]
        with torch.no_grad():
            states = encoder(clip[None]).hidden_states
        out.append(torch.stack([states[i][0].mean(0) for i in layers]))
    return torch.stack(out, dim=1)  # (n_layers, n_windows, H)


@pytest.mark.parametrize("batch_size", [1, 3])
def test_embeddings_match_per_window_reference(tmp_path, music, encoder, batch_size):
    summary = embed(encoder, music, tmp_path / "out", window=1.0, hop=0.75, batch_size=batch_size,
                    layers="0,-1", progress=False)
    assert summary.n_done == 3 and len(summary.failed) == 2 and not summary.ok
    for name in ["a.wav", "sub/b.flac", "c.ogg"]:
        got = Embeddings.load(tmp_path / "out" / f"{name}.safetensors")
        want = reference(encoder, music / name, 1.0, 0.75, [0, 2])
        assert got.embeddings.shape == want.shape
        assert torch.allclose(got.embeddings, want, atol=2e-5), name
        assert got.layers.tolist() == [0, 2]
        assert got.window_starts.tolist() == pytest.approx(file_windows(sf.info(music / name).duration, 1.0, 0.75))
        assert got.metadata["source"] == str(music / name)


def test_bad_files_are_reported_and_the_rest_is_written(tmp_path, music, encoder):
    summary = embed(encoder, music, tmp_path / "out", window=1.0, progress=False)
    rows = read_index(tmp_path / "out" / "index.jsonl")
    assert {r.status for r in rows.values()} == {"ok", "error"}
    assert rows[str(music / "empty.wav")].status == "error" and "empty" in rows[str(music / "empty.wav")].error
    assert "notes.mp3" in summary.failed[str(music / "notes.mp3")]
    assert rows[str(music / "a.wav")].n_windows == 2 and rows[str(music / "a.wav")].duration == pytest.approx(2.5)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.safetensors")) == ["a.wav.safetensors",
                                                                                  "b.flac.safetensors",
                                                                                  "c.ogg.safetensors"]


def test_frame_level_output(tmp_path, music, encoder):
    embed(encoder, music / "a.wav", tmp_path / "out", window=2.0, hop=1.0, pool="none", layers="1", progress=False)
    got = Embeddings.load(tmp_path / "out" / "a.wav.safetensors")
    frames = [encoder.n_frames(48000), encoder.n_frames(36000)]  # 2.5 s: [0, 2] and [1, 2.5]
    assert got.window_frames.tolist() == frames
    assert got.embeddings.shape == (1, sum(frames), 64)
    audio = load(music / "a.wav", 24000)
    with torch.no_grad():
        last = encoder(audio[None, 24000:]).hidden_states[1][0]
    assert torch.allclose(got.embeddings[0, -frames[-1]:], last, atol=2e-5)


class Interrupt(Exception):
    pass


class FlakyEncoder(torch.nn.Module):
    """Wraps an encoder and raises after `n_ok` calls: a run killed halfway."""

    def __init__(self, encoder, n_ok):
        super().__init__()
        self.inner, self.n_ok = encoder, n_ok
        for name in ("sample_rate", "frame_rate", "hidden_size", "n_hidden_states", "receptive_field"):
            setattr(self, name, getattr(encoder, name))

    def forward(self, audio):
        if self.n_ok == 0:
            raise Interrupt
        self.n_ok -= 1
        return self.inner(audio)


def test_interrupted_run_resumes_with_skip_existing(tmp_path, music, encoder):
    out = tmp_path / "out"
    with pytest.raises(Interrupt):
        embed(FlakyEncoder(encoder, n_ok=3), music, out, window=1.0, batch_size=1, progress=False)
    first = read_index(out / "index.jsonl")
    done = [p for p, r in first.items() if r.status == "ok"]
    assert len(done) == 1  # a.wav: 3 windows, 3 calls
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]
    before = (out / "a.wav.safetensors").stat().st_mtime_ns
    summary = embed(encoder, music, out, window=1.0, batch_size=1, skip_existing=True, progress=False)
    assert summary.n_skipped == 1 and summary.n_done == 2
    assert (out / "a.wav.safetensors").stat().st_mtime_ns == before
    rows = read_index(out / "index.jsonl")
    assert sum(r.status == "ok" for r in rows.values()) == 3
    # a torn last line (killed mid-write) is ignored when resuming
    with open(out / "index.jsonl", "a") as f:
        f.write('{"path": "half')
    assert len(read_index(out / "index.jsonl")) == 5


def test_manifest_input_and_name_clash(tmp_path, music, encoder):
    manifest = music / "list.jsonl"
    manifest.write_text(json.dumps({"path": "a.wav"}) + "\n\n" + json.dumps({"path": str(music / "c.ogg")}) + "\n")
    summary = embed(encoder, manifest, tmp_path / "out", window=1.0, progress=False)
    assert summary.n_done == 2 and summary.ok
    assert (tmp_path / "out" / "a.wav.safetensors").is_file()
    manifest.write_text(json.dumps({"file": "a.wav"}) + "\n")
    with pytest.raises(ValueError, match="list.jsonl:1: expected a JSON object with a 'path'"):
        embed(encoder, manifest, tmp_path / "out2", progress=False)


def test_parse_layers():
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("0, 2", 3) == [0, 2]
    assert parse_layers([-1], 13) == [12]
    with pytest.raises(ValueError, match="0..12"):
        parse_layers("13", 13)
    with pytest.raises(ValueError, match="comma list"):
        parse_layers("first", 13)


def test_short_tail_window_is_dropped():
    assert file_windows(60.5, 30, 30) == [0.0, 30.0]  # 0.5 s tail: dropped
    assert file_windows(61.5, 30, 30) == [0.0, 30.0, 60.0]
    assert file_windows(0.5, 30, 30) == [0.0]  # the only window is kept


def test_cli_embed_exit_status_and_help(tmp_path, music, encoder, capsys):
    encoder.save_pretrained(tmp_path / "model")
    assert main(["embed", "--model", str(tmp_path / "model"), "--input", str(music / "a.wav"), "--out",
                 str(tmp_path / "ok"), "--window", "1", "--no-progress"]) == 0
    assert "embedded 1 files" in capsys.readouterr().out
    assert main(["embed", "--model", str(tmp_path / "model"), "--input", str(music), "--out",
                 str(tmp_path / "bad"), "--window", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "empty.wav" in err and "notes.mp3" in err
    assert main(["embed", "--model", "no-such-model", "--input", str(music), "--out", str(tmp_path / "x")]) == 2
    assert "not a preset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["embed", "--help"])
    assert exit_.value.code == 0 and "--skip-existing" in capsys.readouterr().out


def test_cli_embed_with_a_preset_repeats_and_seed_changes_it(tmp_path, music, capsys):
    from safetensors.torch import load_file

    def run(name: str, *seed: str) -> torch.Tensor:
        assert main(["embed", "--model", "mert-tiny", "--input", str(music / "a.wav"), "--out", str(tmp_path / name),
                     "--window", "1", "--no-progress", *seed]) == 0
        return load_file(tmp_path / name / "a.wav.safetensors")["embeddings"]

    first, again, other = run("one"), run("two"), run("three", "--seed", "1")
    assert torch.equal(first, again) and not torch.allclose(first, other)
    with pytest.raises(SystemExit):
        main(["embed", "--help"])
    assert "random weights" in capsys.readouterr().out


def test_unexpected_decoder_error_costs_one_file(tmp_path, music, encoder, monkeypatch):
    from melos.embedding import pipeline

    real = pipeline.iter_windows

    def flaky(path, *args, **kwargs):
        if str(path).endswith("c.ogg"):
            raise RuntimeError("decoder exploded")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pipeline, "iter_windows", flaky)
    summary = embed(encoder, music, tmp_path / "out", window=1.0, progress=False)
    assert "unexpected RuntimeError: decoder exploded" in summary.failed[str(music / "c.ogg")]
    assert summary.n_done == 2


def test_max_duration_embeds_only_the_beginning(tmp_path, music, encoder):
    embed(encoder, music / "c.ogg", tmp_path / "out", window=1.0, max_duration=1.5, progress=False)
    got = Embeddings.load(tmp_path / "out" / "c.ogg.safetensors")
    assert got.window_starts.tolist() == [0.0]  # [0, 1) and a 0.5 s tail, dropped
    # c.ogg lasts 3.2 s: windows [0, 2) and [2, 3.1), the second cut at max_duration
    embed(encoder, music / "c.ogg", tmp_path / "out2", window=2.0, max_duration=3.1, pool="none",
          layers="0", progress=False)
    frames = Embeddings.load(tmp_path / "out2" / "c.ogg.safetensors").window_frames.tolist()
    assert frames == [encoder.n_frames(48000), encoder.n_frames(round(1.1 * 24000))]


def cut_ogg(folder, seconds=4.0):
    """A Vorbis file cut after 60% of its bytes, as a partial download leaves it; returns its path and the
    duration libsndfile gives it (the whole pages present)."""
    noise = np.random.default_rng(1).standard_normal(int(seconds * 24000)).astype(np.float32)
    path = folder / "partial.ogg"
    sf.write(path, 0.3 * noise, 24000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    return path, sf.info(path).duration


def test_truncated_file_is_an_error_row_unless_allowed(tmp_path, music, encoder, capsys):
    partial, present = cut_ogg(music)
    assert 1.0 < present < 4.0  # libsndfile alone reads it as a short, complete file
    summary = embed(encoder, music, tmp_path / "out", window=1.0, progress=False)
    row = read_index(tmp_path / "out" / "index.jsonl")[str(partial)]
    assert row.status == "error" and "file is truncated: last Ogg page" in row.error and str(partial) in row.error
    assert summary.n_done == 3 and str(partial) in summary.failed  # the good files are embedded all the same

    summary = embed(encoder, music, tmp_path / "allowed", window=1.0, allow_truncated=True, progress=False)
    row = read_index(tmp_path / "allowed" / "index.jsonl")[str(partial)]
    assert row.status == "ok" and row.duration == pytest.approx(present) and summary.n_done == 4

    encoder.save_pretrained(tmp_path / "model")
    args = ["embed", "--model", str(tmp_path / "model"), "--input", str(partial), "--window", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "cli")]) == 1
    assert "file is truncated" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "cli-allowed"), "--allow-truncated"]) == 0
    assert (tmp_path / "cli-allowed" / "partial.ogg.safetensors").is_file()


def test_bfloat16_on_cpu_holds_the_weights_and_stays_within_cosine_0999_of_float32(encoder, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from melos.embedding.pipeline import WindowEncoder

    monkeypatch.setattr("melos.embedding.pipeline.bf16_supported", lambda: True)  # the path, on any CPU
    layers = list(range(encoder.n_hidden_states))
    fp32 = WindowEncoder(encoder, layers, "none", "cpu", "float32")
    bf16 = WindowEncoder(encoder, layers, "none", "cpu", "bfloat16")
    assert bf16.encoder is not encoder and next(encoder.parameters()).dtype == torch.float32  # a copy
    norms = [m for m in bf16.encoder.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm))]
    linears = [m for m in bf16.encoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))]
    assert norms and all(p.dtype == torch.float32 for m in norms for p in m.parameters())
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    g = torch.Generator().manual_seed(0)
    t = torch.arange(12000) / 24000
    freqs = torch.cat([200 + 100 * torch.rand(60, generator=g), 2000 + 1000 * torch.rand(60, generator=g)])
    audio = torch.sin(2 * torch.pi * freqs[:, None] * t) * 0.3 + 0.05 * torch.randn(120, 12000, generator=g)
    a, b = fp32(audio), bf16(audio)  # [B, L, T, H], float32
    assert b.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)  # per frame and layer
    assert cos.min() >= 0.999
    labels = (freqs > 1000).numpy()
    for layer in (1, encoder.n_hidden_states - 1):  # a probe on either dtype's embeddings scores the same
        aucs = []
        for x in (a, b):
            feats = x[:, layer].mean(dim=1).numpy()
            probe = LogisticRegression(max_iter=2000).fit(feats[::2], labels[::2])
            aucs.append(roc_auc_score(labels[1::2], probe.decision_function(feats[1::2])))
        assert abs(aucs[0] - aucs[1]) <= 0.005


def test_bfloat16_on_a_cpu_without_it_says_so_and_runs_float32(encoder, monkeypatch, caplog):
    from melos.embedding.pipeline import WindowEncoder

    monkeypatch.setattr("melos.embedding.pipeline.bf16_supported", lambda: False)
    with caplog.at_level("WARNING"):
        forward = WindowEncoder(encoder, [0, 1], "mean", "cpu", "bfloat16")
    assert forward.encoder is encoder and "no native bfloat16" in caplog.text
    assert not forward.autocast._enabled  # float32 as it is, no autocast either

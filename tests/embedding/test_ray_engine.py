"""melos embed --engine ray: the local engine's outputs (tensors, metadata, index rows, bad files)
from a local Ray with 2 CPUs; a killed actor costs only its files and the run resumes another's."""

import os
import signal
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from melos.cli import main
from melos.data.sources import AudioSource
from melos.embedding import Embeddings, embed, embed_ray, read_index, read_parquet
from melos.embedding.ray_engine import INSTALL
from melos.embedding.store import named_parts


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the module (it takes ~10 s to start)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'melos[ray]'): Ray engine untested")
    pytest.importorskip("ray.data", reason="ray[data] is not installed: Ray engine untested")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    # The test's encoder wrapper lives in this module, which Ray's workers cannot import.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()


GOOD = ["a.wav", "sub/b.flac", "c.ogg", "d.wav"]


def test_ray_cli_writes_what_the_local_engine_writes(tmp_path, ray_cluster, music, encoder, capsys):
    encoder.save_pretrained(tmp_path / "model")
    args = ["embed", "--model", str(tmp_path / "model"), "--input", str(music), "--window", "1", "--hop", "0.75",
            "--layers", "0,-1", "--batch-size", "2", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "local")]) == 1  # two bad files
    assert main([*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert "empty.wav" in err and "notes.mp3" in err
    local, ray = read_index(tmp_path / "local" / "index.jsonl"), read_index(tmp_path / "ray" / "index.jsonl")
    assert ray == local  # same rows: outputs, durations, window counts, the bad files' reasons
    assert sorted(p for p, r in ray.items() if r.status == "ok") == sorted(str(music / n) for n in GOOD)
    for name in GOOD:
        want = Embeddings.load(tmp_path / "local" / f"{name}.safetensors")
        got = Embeddings.load(tmp_path / "ray" / f"{name}.safetensors")
        assert got.metadata == want.metadata
        assert torch.equal(got.window_starts, want.window_starts) and torch.equal(got.layers, want.layers)
        assert torch.equal(got.window_frames, want.window_frames)
        assert got.embeddings.shape == want.embeddings.shape
        assert torch.allclose(got.embeddings, want.embeddings, atol=1e-5), name


class KillOnce(torch.nn.Module):
    """Wraps an encoder; the first process to call it (the marker file says which) kills itself
    with SIGKILL, as an out-of-memory killer or a lost node would."""

    def __init__(self, encoder, marker):
        super().__init__()
        self.inner, self.marker = encoder, str(marker)
        for name in ("sample_rate", "frame_rate", "hidden_size", "n_hidden_states", "receptive_field"):
            setattr(self, name, getattr(encoder, name))

    def forward(self, audio):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return self.inner(audio)
        os.kill(os.getpid(), signal.SIGKILL)


def test_killed_actor_is_retried_and_resume_skips_finished_files(tmp_path, ray_cluster, music, encoder):
    settings = dict(window=1.0, layers="1", format="parquet", progress=False)
    embed(encoder, music, tmp_path / "local", **settings)
    out = tmp_path / "ray"
    embed(encoder, [AudioSource(music / "a.wav", "a.wav")], out, **settings)  # a run stopped after one file
    marker = tmp_path / "killed"
    summary = embed_ray(KillOnce(encoder, marker), music, out, skip_existing=True, workers=1, files_per_task=1,
                        **settings)
    assert marker.exists()  # an actor died mid-run ...
    assert summary.n_skipped == 1 and summary.n_done == 3 and len(summary.failed) == 2  # ... and cost nothing
    rows = read_index(out / "index.jsonl")
    assert sorted(p for p, r in rows.items() if r.status == "ok") == sorted(str(music / n) for n in GOOD)

    def rows_of(table):
        return table.sort_by([("path", "ascending"), ("window", "ascending")])

    want = rows_of(read_parquet(tmp_path / "local"))
    got = rows_of(read_parquet(out))
    assert got.column("path").equals(want.column("path")) and got.column("start").equals(want.column("start"))
    np.testing.assert_allclose(np.stack(got["layer_1"].to_numpy(zero_copy_only=False)),
                               np.stack(want["layer_1"].to_numpy(zero_copy_only=False)), atol=1e-5)
    for part in named_parts(out):  # the settings are the local run's; the model is named after the wrapper
        assert {**pq.read_schema(part).metadata, b"model": b""} == {**want.schema.metadata, b"model": b""}
    assert pq.read_table(out / "parquet").num_rows == want.num_rows  # no part left twice


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, music, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ValueError, match=r"pip install 'melos\[ray\]'"):
        embed_ray("mert-tiny", music, tmp_path / "out")
    assert main(["embed", "--model", "mert-tiny", "--input", str(music), "--out", str(tmp_path / "out"),
                 "--engine", "ray"]) == 2
    assert capsys.readouterr().err.strip().endswith(INSTALL)

"""The probe `melos probe` saves: it gives back the saved test outputs, and bad files are clear errors."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from melos.cli import main
from melos.evaluation.features import load_split
from melos.evaluation.probe import WEIGHTED
from melos.evaluation.saved_probe import SavedProbe
from melos.evaluation.tasks import load_task
from melos.models.hf_layout import CheckpointError


@pytest.mark.parametrize("kind", ["multilabel", "multiclass"])
def test_saved_probe_reproduces_the_saved_test_outputs(tmp_path, tone_task, kind):
    torch.manual_seed(0)  # mert-tiny's random weights
    task_file = tone_task(tmp_path, kind)
    out = tmp_path / "results"
    assert main(["probe", "--model", "mert-tiny", "--task", str(task_file), "--out", str(out), "--cache",
                 str(tmp_path / "cache"), "--seeds", "2", "--epochs", "6", "--no-progress"]) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["mert-tiny"][f"tones-{kind}"]
    assert run["probe_weights"] == f"probes/0-tones-{kind}.safetensors"
    probe = SavedProbe.load(out / run["probe_weights"])
    task = load_task(task_file)
    assert (probe.task, probe.type, probe.window, probe.hop) == (task.name, kind, 1.0, 1.0)
    assert probe.labels == task.vocabulary
    assert probe.layer == (WEIGHTED if run["chosen"]["layer"] == "weighted" else run["chosen"]["layer"])
    cache = next((tmp_path / "cache").iterdir())
    assert probe.model_hash == json.loads((cache / "cache.json").read_text())["model_hash"]

    test = load_split(cache, task, "test")  # raw features: the probe standardises them itself
    windows = probe.predict(test.features)  # [W, C]
    n_tracks = int(test.groups.max()) + 1
    tracks = torch.zeros(n_tracks, windows.shape[1]).index_add_(0, test.groups, windows)
    tracks /= torch.bincount(test.groups, minlength=n_tracks)[:, None]
    saved = load_file(out / run["test_outputs"])["outputs"][0]  # the first seed's
    torch.testing.assert_close(tracks, saved, atol=1e-5, rtol=0)
    total = windows.sum(-1)
    if kind == "multiclass":
        torch.testing.assert_close(total, torch.ones_like(total))


def _probe(layer: int = 1) -> SavedProbe:
    weights = {"w1": torch.randn(4, 8), "b1": torch.zeros(8), "w2": torch.randn(8, 2), "b2": torch.zeros(2)}
    if layer == WEIGHTED:
        weights["mix"] = torch.zeros(3)
    return SavedProbe("t", "multilabel", ["a", "b"], layer, 1.0, 0.5, "abc", weights, torch.zeros(3, 1, 4),
                      torch.ones(3, 1, 4))


def test_save_load_round_trip_and_weighted_sum(tmp_path):
    for layer in (1, WEIGHTED):
        _probe(layer).save(tmp_path / "p.safetensors")
        probe = SavedProbe.load(tmp_path / "p.safetensors")
        assert (probe.labels, probe.layer, probe.hop, probe.model_hash) == (["a", "b"], layer, 0.5, "abc")
        x = torch.randn(3, 5, 4)
        p = probe.predict(x)
        assert p.shape == (5, 2) and ((p > 0) & (p < 1)).all()
    same = torch.randn(1, 5, 4).expand(3, 5, 4)  # equal layers: an even mix reads that layer
    torch.testing.assert_close(probe.predict(same), SavedProbe.load(tmp_path / "p.safetensors").predict(same))
    with pytest.raises(ValueError, match=r"expects features \[3, W, 4\]"):
        probe.predict(torch.randn(2, 5, 4))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        SavedProbe.load(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a safetensors file"):
        SavedProbe.load(junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.safetensors: not a probe saved by melos probe"):
        SavedProbe.load(foreign)
    _probe().save(tmp_path / "p.safetensors")
    tensors = load_file(tmp_path / "p.safetensors")
    with safe_open(str(tmp_path / "p.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    del tensors["w2"]
    save_file(tensors, tmp_path / "cut.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="cut.safetensors: probe file lacks w2"):
        SavedProbe.load(tmp_path / "cut.safetensors")


def test_regression_probe_learns_standardised_targets_and_saves_raw_units(tmp_path, tone_task):
    """Targets near 1000: unstandardised, no learning rate of the grid moves the output that far in
    20 epochs (r² far below 0); standardised, the probe beats the mean, and both the saved
    outputs and the saved probe's predictions are in the targets' own units."""
    torch.manual_seed(0)
    task_file = tone_task(tmp_path, "regression")
    out = tmp_path / "results"
    assert main(["probe", "--model", "mert-tiny", "--task", str(task_file), "--out", str(out), "--cache",
                 str(tmp_path / "cache"), "--seeds", "1", "--epochs", "20", "--no-progress"]) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["mert-tiny"]["tones-regression"]
    assert run["test"]["r2"]["mean"] > 0.3
    cache = next((tmp_path / "cache").iterdir())
    test = load_split(cache, load_task(task_file), "test")
    saved = load_file(out / run["test_outputs"])
    torch.testing.assert_close(saved["targets"], test.targets)
    assert 1000 < float(saved["outputs"].mean()) < 1012
    windows = SavedProbe.load(out / run["probe_weights"]).predict(test.features)
    n_tracks = int(test.groups.max()) + 1
    tracks = torch.zeros(n_tracks, 1).index_add_(0, test.groups, windows) / torch.bincount(test.groups)[:, None]
    torch.testing.assert_close(tracks, saved["outputs"][0], atol=1e-3, rtol=0)

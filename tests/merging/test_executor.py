"""The streaming merge executor against closed forms computed from whole state dicts."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from melos import load_encoder
from melos.merging import methods
from melos.merging.executor import POS_CONV_G, POS_CONV_V, MergeSpec, merge
from melos.models.hf_layout import CheckpointError


def weights(directory):
    return load_file(directory / "model.safetensors")


def test_task_arithmetic_equals_the_closed_form_and_reloads(tiny_models, tmp_path):
    base, models = tiny_models
    record = merge(base, models, MergeSpec(weights=[0.2]), tmp_path / "ta", progress=False)
    theta, ws = weights(base), [weights(m) for m in models]
    out = weights(tmp_path / "ta")
    assert set(out) == set(theta)
    for k in theta:
        expected = theta[k] + 0.2 * sum(w[k] - theta[k] for w in ws)
        assert torch.allclose(out[k], expected, atol=1e-6), k
    assert record["method"] == "task_arithmetic" and record["params"]["weights"] == [0.2]
    assert record["base"]["sha256"] == hashlib.sha256((base / "model.safetensors").read_bytes()).hexdigest()
    assert record["zero_task_vector_groups"][str(models[0] / "model.safetensors")] == ["cnn"]
    assert json.loads((tmp_path / "ta" / "merge.json").read_text()) == record
    assert (tmp_path / "ta" / "preprocessor_config.json").is_file()
    load_encoder(tmp_path / "ta")  # strict load: every tensor, right shapes


def test_average_is_the_mean_and_excluded_groups_keep_the_base(tiny_models, tmp_path):
    base, models = tiny_models
    merge(base, models, MergeSpec(method="average", exclude=["block.1"]), tmp_path / "avg", progress=False)
    theta, ws, out = weights(base), [weights(m) for m in models], weights(tmp_path / "avg")
    for k in theta:
        expected = theta[k] if k.startswith("encoder.layers.1.") else torch.stack([w[k] for w in ws]).mean(0)
        assert torch.allclose(out[k], expected, atol=1e-6), k


def test_per_model_and_per_layer_lambdas(tiny_models, tmp_path):
    base, models = tiny_models
    spec = MergeSpec(weights=[1.0, -1.0, 0.5], layer_weights={"block.0": 0.1})
    merge(base, models, spec, tmp_path / "m", progress=False)
    theta, ws, out = weights(base), [weights(m) for m in models], weights(tmp_path / "m")
    for k in theta:
        lambdas = [0.1] * 3 if k.startswith("encoder.layers.0.") else [1.0, -1.0, 0.5]
        expected = theta[k] + sum(lam * (w[k] - theta[k]) for lam, w in zip(lambdas, ws))
        assert torch.allclose(out[k], expected, atol=1e-6), k


def test_ties_per_tensor_and_whole_model_trimming(tiny_models, tmp_path):
    base, models = tiny_models
    theta, ws = weights(base), [weights(m) for m in models]
    merge(base, models, MergeSpec(method="ties", density=0.3, weights=[0.5]), tmp_path / "t", progress=False)
    merge(base, models, MergeSpec(method="ties", density=0.3, weights=[0.5], trim="model"), tmp_path / "g",
          progress=False)
    per_tensor, whole = weights(tmp_path / "t"), weights(tmp_path / "g")
    keys = sorted(theta)
    taus = [{k: w[k] - theta[k] for k in keys} for w in ws]
    global_thresholds = [methods.magnitude_threshold(torch.cat([t[k].flatten() for k in keys]), 0.3) for t in taus]
    for k in keys:
        local = [methods.magnitude_threshold(t[k], 0.3) for t in taus]
        assert torch.allclose(per_tensor[k], methods.ties(theta[k], [t[k] for t in taus], local, 0.5), atol=1e-6), k
        assert torch.allclose(whole[k], methods.ties(theta[k], [t[k] for t in taus], global_thresholds, 0.5),
                              atol=1e-6), k
    assert any(not torch.equal(per_tensor[k], whole[k]) for k in keys)


def test_dare_is_reproducible_from_its_seed(tiny_models, tmp_path):
    base, models = tiny_models
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        merge(base, models, MergeSpec(method="dare", drop=0.5, seed=seed), tmp_path / name, progress=False)
    a, b, c = (weights(tmp_path / n) for n in "abc")
    key = "encoder.layers.0.attention.q_proj.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert json.loads((tmp_path / "c" / "merge.json").read_text())["seed"] == 2


def test_positional_conv_on_combined_weight(tiny_models, tmp_path):
    base, models = tiny_models
    merge(base, models, MergeSpec(weights=[0.3], pos_conv="combined"), tmp_path / "c", progress=False)
    merge(base, models, MergeSpec(weights=[0.3]), tmp_path / "s", progress=False)

    def combined(state):
        g, v = state[POS_CONV_G], state[POS_CONV_V]
        return g * v / v.norm(dim=(0, 1), keepdim=True)

    theta, ws = weights(base), [weights(m) for m in models]
    expected = combined(theta) + 0.3 * sum(combined(w) - combined(theta) for w in ws)
    assert torch.allclose(combined(weights(tmp_path / "c")), expected, atol=1e-5)
    assert not torch.allclose(combined(weights(tmp_path / "s")), expected, atol=1e-5)  # the two differ


def test_key_spellings_are_normalised(tiny_models, tmp_path):
    base, models = tiny_models
    state = weights(models[0])
    respelled = {"module." + k.replace(".weight_g", ".parametrizations.weight.original0")
                 .replace(".weight_v", ".parametrizations.weight.original1"): v for k, v in state.items()}
    save_file(respelled, tmp_path / "respelled.safetensors")
    merge(base, [tmp_path / "respelled.safetensors"], MergeSpec(), tmp_path / "r", progress=False)
    merge(base, [models[0]], MergeSpec(), tmp_path / "o", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(tmp_path / "r").values(), weights(tmp_path / "o").values()))


def test_mismatches_name_the_tensor_and_write_nothing(tiny_models, tmp_path):
    base, models = tiny_models
    state = weights(models[0])
    del state["encoder.layer_norm.bias"]
    save_file(state, tmp_path / "missing.safetensors")
    with pytest.raises(CheckpointError, match="missing: encoder.layer_norm.bias"):
        merge(base, [tmp_path / "missing.safetensors"], MergeSpec(), tmp_path / "out", progress=False)
    state = weights(models[0])
    state["encoder.layer_norm.bias"] = torch.zeros(3)
    save_file(state, tmp_path / "shape.safetensors")
    with pytest.raises(CheckpointError, match="encoder.layer_norm.bias.*shape"):
        merge(base, [tmp_path / "shape.safetensors"], MergeSpec(), tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_merge_leaves_nothing(tiny_models, tmp_path, monkeypatch):
    base, models = tiny_models

    def fail(directory):
        raise KeyboardInterrupt

    monkeypatch.setattr("melos.merging.executor.smoke_test", fail)
    with pytest.raises(KeyboardInterrupt):
        merge(base, models, MergeSpec(), tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_merge_that_breaks_the_model_is_refused(tiny_models, tmp_path):
    base, models = tiny_models
    with pytest.raises(CheckpointError, match="non-finite"):
        merge(base, models, MergeSpec(weights=[float("inf")]), tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_efficient_encoders_merge_like_mert(tmp_path, perturb):
    torch.manual_seed(0)
    base = load_encoder("branchformer-sm-tiny").save_pretrained(tmp_path / "base")
    models = [perturb(base, tmp_path / f"m{i}", seed=i, frozen=("front_end.",)) for i in range(2)]
    record = merge(base, models, MergeSpec(weights=[0.5]), tmp_path / "ta", progress=False)
    theta, ws, out = weights(base), [weights(m) for m in models], weights(tmp_path / "ta")
    for k in theta:
        assert torch.allclose(out[k], theta[k] + 0.5 * sum(w[k] - theta[k] for w in ws), atol=1e-6), k
    assert record["zero_task_vector_groups"][str(models[0] / "model.safetensors")] == ["front_end"]
    assert load_encoder(tmp_path / "ta").config == load_encoder(base).config  # config carried in the file

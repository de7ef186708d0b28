"""MERT encoder: equivalence with transformers' HubertModel, official layout, presets, errors."""

import argparse
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

import melos
from melos.models import PRESETS, CheckpointError, MERTEncoder, load_encoder
from melos.models.mert import normalize_clips


def tiny_config(pre_norm: bool, do_normalize: bool = False) -> melos.MERTConfig:
    """The real conv kernels and strides, tiny widths."""
    return dataclasses.replace(PRESETS["mert-tiny"], do_stable_layer_norm=pre_norm, do_normalize=do_normalize)


def random_model(config: melos.MERTConfig, seed: int = 0) -> MERTEncoder:
    torch.manual_seed(seed)
    model = MERTEncoder(config).eval()
    with torch.no_grad():  # non-trivial norms and biases, so a misplaced LayerNorm shows up
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def reference_states(directory, audio, normalize: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
    """transformers' HubertModel on the same checkpoint, eager attention, official preprocessing."""
    ref = HubertModel.from_pretrained(directory, attn_implementation="eager").eval()
    if normalize:
        fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, do_normalize=True)
        audio = fe(list(audio.numpy()), sampling_rate=24000, return_tensors="pt").input_values
    with torch.no_grad():
        out = ref(audio, output_hidden_states=True)
    return list(out.hidden_states), out.last_hidden_state


@pytest.mark.parametrize("pre_norm", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("n_samples", [400, 24000, 24000 + 123, 2 * 24000 + 319])
def test_matches_transformers_hubert(tmp_path, pre_norm, n_samples):
    model = random_model(tiny_config(pre_norm, do_normalize=True))
    model.save_pretrained(tmp_path / "ckpt")
    audio = 0.3 * torch.randn(2, n_samples) + 0.05
    with torch.no_grad():
        out = model(audio)
    states, last = reference_states(tmp_path / "ckpt", audio, normalize=True)
    assert len(out.hidden_states) == len(states) == model.config.num_hidden_layers + 1
    # transformers 5 reports the pre-LN model's last state before the final LayerNorm; the official
    # MERT indexing (and transformers' last_hidden_state) is after it.
    states[-1] = last
    for i, (mine, theirs) in enumerate(zip(out.hidden_states, states)):
        assert mine.shape == theirs.shape == (2, model.n_frames(n_samples), 64), i
        assert (mine - theirs).abs().max().item() <= 1e-4, f"hidden state {i}"
    assert torch.equal(out.last_hidden_state, out.hidden_states[-1])


def test_frame_count_and_rates():
    model = random_model(tiny_config(False))
    assert model.sample_rate == 24000 and model.frame_rate == 75
    assert model.feature_extractor.receptive_field == 400
    assert model.n_frames(5 * 24000) == 374
    for n in [400, 719, 720, 1000, 5 * 24000 + 7]:
        with torch.no_grad():
            t = model(torch.randn(1, n)).last_hidden_state.shape[1]
        assert t == (n - 400) // 320 + 1 == model.n_frames(n)
    with pytest.raises(ValueError, match="receptive field"):
        model(torch.randn(1, 399))


def test_normalize_clips_matches_the_official_processor():
    audio = torch.randn(3, 1000) * torch.tensor([[0.01], [1.0], [7.0]]) + 0.3
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=24000, do_normalize=True)
    expected = fe(list(audio.numpy()), sampling_rate=24000, return_tensors="np").input_values
    assert torch.allclose(normalize_clips(audio), torch.from_numpy(expected), atol=2e-5, rtol=0)


def test_encoder_applies_normalisation_per_clip():
    config = tiny_config(False, do_normalize=True)
    model = random_model(config)
    raw = random_model(dataclasses.replace(config, do_normalize=False))
    # A quiet clip: without normalisation the first GroupNorm's eps dominates and outputs differ.
    a, b = 1e-4 * torch.randn(1, 8000), 5 * torch.randn(1, 8000) + 2
    with torch.no_grad():
        batch = model(torch.cat([a, b])).last_hidden_state
        alone = model(a).last_hidden_state
        manual = raw(normalize_clips(a)).last_hidden_state
        unnormalised = raw(a).last_hidden_state
    assert torch.allclose(batch[:1], alone, atol=1e-5)
    assert torch.equal(alone, manual)
    assert (alone - unnormalised).abs().max() > 0.1


@pytest.mark.parametrize("pytorch_bin", [False, True])
def test_save_load_round_trip_is_exact(tmp_path, pytorch_bin):
    model = random_model(tiny_config(True, do_normalize=True))
    model.save_pretrained(tmp_path / "m", pytorch_bin=pytorch_bin)
    if pytorch_bin:
        (tmp_path / "m" / "model.safetensors").unlink()  # force the .bin path
    loaded = load_encoder(tmp_path / "m")
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.config == model.config
    audio = torch.randn(1, 12000)
    with torch.no_grad():
        assert torch.equal(model(audio).last_hidden_state, loaded(audio).last_hidden_state)


def test_saved_layout_is_official(tmp_path):
    model = random_model(tiny_config(False))
    model.save_pretrained(tmp_path / "m")
    keys = set(load_file(tmp_path / "m" / "model.safetensors"))
    assert "encoder.pos_conv_embed.conv.weight_g" in keys and "encoder.pos_conv_embed.conv.weight_v" in keys
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert HubertConfig(**config).hidden_size == 64
    pre = json.loads((tmp_path / "m" / "preprocessor_config.json").read_text())
    assert pre["sampling_rate"] == 24000 and pre["do_normalize"] is False


def write_official_mert(directory, model: MERTEncoder) -> None:
    """A directory laid out like m-a-p/MERT-v1-95M: custom code, auto_map, .bin weights only."""
    model.save_pretrained(directory, pytorch_bin=True)
    (directory / "model.safetensors").unlink()
    config = json.loads((directory / "config.json").read_text())
    config.update(model_type="mert_model", architectures=["MERTModel"], attention_relax=-1.0, deepnorm=False,
                  auto_map={"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"})
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "configuration_MERT.py").write_text("# configuration code\n")
    (directory / "modeling_MERT.py").write_text("# modeling code\n")


def official_330m_config(model: MERTEncoder) -> dict:
    """Every field of m-a-p/MERT-v1-330M's config.json, with the tiny model's sizes."""
    c = model.config
    return {
        "_name_or_path": "m-a-p/MERT-v1-330M", "activation_dropout": 0.0, "apply_spec_augment": True,
        "architectures": ["MERTModel"], "attention_dropout": 0.0, "attention_relax": 32.0,
        "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
        "bos_token_id": 1, "classifier_proj_size": 256, "conv_bias": False, "conv_dim": list(c.conv_dim),
        "conv_kernel": list(c.conv_kernel), "conv_stride": list(c.conv_stride), "ctc_loss_reduction": "sum",
        "ctc_zero_infinity": False, "deepnorm": False, "do_stable_layer_norm": True, "eos_token_id": 2,
        "feat_extract_activation": "gelu", "feat_extract_dropout": 0.0, "feat_extract_norm": "group",
        "feat_proj_dropout": 0.0, "feat_proj_layer_norm": True, "feature_extractor_cqt": False,
        "feature_extractor_cqt_bins": 336, "final_dropout": 0.0, "hidden_act": "gelu", "hidden_dropout": 0.0,
        "hidden_size": c.hidden_size, "initializer_range": 0.02, "intermediate_size": c.intermediate_size,
        "layer_norm_eps": 1e-05, "layerdrop": 0.0, "mask_feature_length": 10, "mask_feature_min_masks": 0,
        "mask_feature_prob": 0.0, "mask_time_length": 10, "mask_time_min_masks": 2, "mask_time_prob": 0.05,
        "model_type": "mert_model", "num_attention_heads": c.num_attention_heads,
        "num_conv_pos_embedding_groups": c.num_conv_pos_embedding_groups,
        "num_conv_pos_embeddings": c.num_conv_pos_embeddings, "num_feat_extract_layers": len(c.conv_dim),
        "num_hidden_layers": c.num_hidden_layers, "pad_token_id": 0, "sample_rate": 24000,
        "tokenizer_class": "Wav2Vec2CTCTokenizer", "torch_dtype": "float32", "transformers_version": "4.24.0",
        "use_weighted_layer_sum": False, "vocab_size": 32,
    }


def test_official_330m_config_loads_and_matches_transformers_hubert(tmp_path):
    model = random_model(tiny_config(True, do_normalize=True))
    write_official_mert(tmp_path / "official", model)
    (tmp_path / "official" / "config.json").write_text(json.dumps(official_330m_config(model)))
    loaded = load_encoder(tmp_path / "official")
    audio = 0.3 * torch.randn(2, 24000 + 77)
    with torch.no_grad():
        out = loaded(audio)
    states, last = reference_states(tmp_path / "official", audio, normalize=True)
    states[-1] = last  # the official indexing: after the pre-LN model's final LayerNorm
    assert len(out.hidden_states) == len(states)
    for i, (mine, theirs) in enumerate(zip(out.hidden_states, states)):
        assert (mine - theirs).abs().max().item() <= 1e-4, f"hidden state {i}"
    loaded.save_pretrained(tmp_path / "again")
    written = json.loads((tmp_path / "again" / "config.json").read_text())
    assert written == official_330m_config(model)  # every field kept, attention_relax included


@pytest.mark.parametrize("key, value", [("deepnorm", True), ("feature_extractor_cqt", True),
                                        ("hidden_act", "relu"), ("conv_pos_batch_norm", True)])
def test_output_changing_variants_are_refused(tmp_path, key, value):
    model = random_model(tiny_config(True))
    write_official_mert(tmp_path / "m", model)
    config = official_330m_config(model) | {key: value}
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"config.json: {key}={value!r} changes the model's outputs"):
        load_encoder(tmp_path / "m")


def test_official_layout_keeps_identity_and_code(tmp_path):
    model = random_model(tiny_config(False, do_normalize=True))
    write_official_mert(tmp_path / "official", model)
    loaded = load_encoder(tmp_path / "official")
    loaded.save_pretrained(tmp_path / "again")
    config = json.loads((tmp_path / "again" / "config.json").read_text())
    assert config["model_type"] == "mert_model"
    assert config["auto_map"]["AutoModel"] == "modeling_MERT.MERTModel"
    assert (tmp_path / "again" / "modeling_MERT.py").read_text() == "# modeling code\n"
    again = load_encoder(tmp_path / "again")
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_parametrization_key_spelling_is_accepted(tmp_path):
    model = random_model(tiny_config(False))
    model.save_pretrained(tmp_path / "m")
    file = tmp_path / "m" / "model.safetensors"
    state = load_file(file)
    state["encoder.pos_conv_embed.conv.parametrizations.weight.original0"] = state.pop("encoder.pos_conv_embed.conv.weight_g")
    state["encoder.pos_conv_embed.conv.parametrizations.weight.original1"] = state.pop("encoder.pos_conv_embed.conv.weight_v")
    save_file(state, file)
    assert torch.equal(load_encoder(tmp_path / "m").encoder.pos_conv_embed.conv.weight_g,
                       model.encoder.pos_conv_embed.conv.weight_g)


@pytest.mark.parametrize("damage, message", [
    (lambda s: s.pop("encoder.layers.1.feed_forward.output_dense.bias"),
     "missing tensors: encoder.layers.1.feed_forward.output_dense.bias"),
    (lambda s: s.__setitem__("decoder.extra", torch.zeros(3)), "unexpected tensors: decoder.extra"),
    (lambda s: s.__setitem__("feature_projection.projection.weight", torch.zeros(64, 31)),
     r"mis-shaped tensors: feature_projection.projection.weight: checkpoint \(64, 31\) vs model \(64, 32\)"),
])
def test_mismatched_checkpoint_names_the_tensor(tmp_path, damage, message):
    random_model(tiny_config(False)).save_pretrained(tmp_path / "m")
    file = tmp_path / "m" / "model.safetensors"
    state = load_file(file)
    damage(state)
    save_file(state, file)
    with pytest.raises(CheckpointError, match=message) as err:
        load_encoder(tmp_path / "m")
    assert "model.safetensors" in str(err.value)


def test_pickled_code_is_refused(tmp_path):
    random_model(tiny_config(False)).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").unlink()
    torch.save({"weights": argparse.Namespace(payload=1)}, tmp_path / "m" / "pytorch_model.bin")  # not a tensor type
    with pytest.raises(CheckpointError, match="pytorch_model.bin: cannot read PyTorch weights safely"):
        load_encoder(tmp_path / "m")


def test_missing_sources_explain_themselves(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_encoder("m-a-p/MERT-v1-95M")
    with pytest.raises(FileNotFoundError, match="not a preset"):
        load_encoder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json: missing"):
        load_encoder(tmp_path / "empty")


@pytest.mark.parametrize("preset, n_params, n_layers, pre_norm", [
    ("mert-v1-95m", 94_371_712, 12, False),
    ("mert-v1-330m", 315_428_992, 24, True),
])
def test_full_size_presets(preset, n_params, n_layers, pre_norm):
    config = PRESETS[preset]
    with torch.device("meta"):
        model = MERTEncoder(config)
        reference = HubertModel(HubertConfig(**{k: v for k, v in config.to_hf().items()
                                                if k not in ("model_type", "architectures")}))
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert model.n_hidden_states == n_layers + 1 and model.config.do_stable_layer_norm == pre_norm
    from melos.models.hf_layout import normalize_keys
    assert set(model.state_dict()) == set(normalize_keys(reference.state_dict()))


def test_frame_mask_replaces_projected_features_with_the_mask_embedding():
    model = random_model(tiny_config(False))
    audio = torch.randn(2, 8000)
    mask = torch.zeros(2, model.n_frames(8000), dtype=torch.bool)
    mask[0, 3:8] = True
    with torch.no_grad():
        plain = model(audio)
        masked = model(audio, frame_mask=mask)
        x = model.feature_projection(plain.features)
        x[mask] = model.masked_spec_embed
        expected = model.encoder(x)
    assert torch.equal(masked.features, plain.features)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(masked.hidden_states, expected))
    assert not torch.allclose(masked.last_hidden_state[0], plain.last_hidden_state[0])
    assert torch.allclose(masked.last_hidden_state[1], plain.last_hidden_state[1], atol=1e-6)


def test_feature_grad_mult_scales_only_the_front_end_gradient():
    model = random_model(tiny_config(False))
    audio = torch.randn(1, 4000)
    grads = {}
    for mult in (1.0, 0.1):
        model.zero_grad()
        model.feature_grad_mult = mult
        model(audio).last_hidden_state.sum().backward()
        grads[mult] = (model.feature_extractor.conv_layers[0].conv.weight.grad.clone(),
                       model.feature_projection.projection.weight.grad.clone())
    torch.testing.assert_close(grads[0.1][0], 0.1 * grads[1.0][0], rtol=1e-3, atol=1e-6 * grads[1.0][0].abs().max().item())
    assert torch.equal(grads[0.1][1], grads[1.0][1])


@pytest.mark.parametrize("preset", ["mert-tiny", "branchformer-sm-tiny"])
def test_a_preset_is_the_same_model_in_every_run_and_leaves_the_caller_rng_alone(preset):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = load_encoder(preset).state_dict()
    after = torch.rand(3)
    torch.manual_seed(7)  # the caller's seed does not choose the weights: the preset seed does
    b = load_encoder(preset).state_dict()
    c = load_encoder(preset, seed=1).state_dict()
    assert torch.equal(before, after)  # the global generator was not advanced
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point() and a[k].numel() > 1)

import pytest

from melos.merging.keys import canonical_names, group_of, selected
from melos.models.hf_layout import CheckpointError


def test_groups_of_hubert_names():
    assert group_of("feature_extractor.conv_layers.0.conv.weight") == "cnn"
    assert group_of("feature_projection.projection.weight") == "projection"
    assert group_of("encoder.pos_conv_embed.conv.weight_g") == "pos_conv"
    assert group_of("encoder.layers.11.attention.q_proj.weight") == "block.11"
    assert group_of("encoder.layer_norm.bias") == "final_norm"
    assert group_of("final_proj.weight") == "heads"
    assert group_of("masked_spec_embed") == "other"


def test_selectors_match_names_and_groups_and_exclusion_wins():
    key = "encoder.layers.3.attention.q_proj.weight"
    assert selected(key, None, None)
    assert selected(key, ["block.*"], None) and not selected(key, ["cnn"], None)
    assert selected(key, ["encoder.layers.3.*"], None)
    assert not selected(key, ["block.*"], ["block.3"])


def test_canonical_names_undo_wrappers_and_parametrisations():
    stored = ["module.encoder.pos_conv_embed.conv.parametrizations.weight.original0",
              "module.encoder.pos_conv_embed.conv.parametrizations.weight.original1", "module.encoder.layer_norm.bias"]
    assert canonical_names(stored, "f") == {"encoder.pos_conv_embed.conv.weight_g": stored[0],
                                            "encoder.pos_conv_embed.conv.weight_v": stored[1],
                                            "encoder.layer_norm.bias": stored[2]}
    assert set(canonical_names(["model.a", "model.b"], "f")) == {"a", "b"}
    with pytest.raises(CheckpointError, match="spelled twice"):
        canonical_names(["x.weight_g", "x.parametrizations.weight.original0"], "f")

"""Merge recipes: read by the shared typed loader, with the `lambda` shorthand and relative paths."""

import re
from pathlib import Path

import pytest

from melos.merging.executor import MergeSpec
from melos.merging.recipe import load_merge_recipe


def write(tmp_path, text):
    (tmp_path / "merge.yaml").write_text(text)
    return tmp_path / "merge.yaml"


def test_a_recipe_gives_paths_and_a_typed_spec(tmp_path):
    base, models, spec, out = load_merge_recipe(write(tmp_path, """
base: runs/western/final
models: [runs/makam/final, /abs/raga]
method: ties
weights: [1, 0.5]
layer_weights: {"block.1*": 0.3, cnn: 0}
exclude: [pos_conv]
density: 1
out: merged/ties
"""))
    assert base == tmp_path / "runs/western/final" and out == tmp_path / "merged/ties"
    assert models == [tmp_path / "runs/makam/final", Path("/abs/raga")]
    assert spec == MergeSpec(method="ties", weights=[1.0, 0.5], layer_weights={"block.1*": 0.3, "cnn": 0.0},
                             exclude=["pos_conv"], density=1.0)
    assert type(spec) is MergeSpec and type(spec.layer_weights["cnn"]) is float


@pytest.mark.parametrize("shorthand", ["lambda: 0.25", "weights: 0.25", "lambda: [0.25]"])
def test_one_lambda_for_every_model(tmp_path, shorthand):
    spec = load_merge_recipe(write(tmp_path, f"base: b\nmodels: [m]\nout: o\n{shorthand}\n"))[2]
    assert spec.weights == [0.25]


@pytest.mark.parametrize("text, message", [
    ("base: b\nmodels: [m]\nout: o\nlamda: 0.2\n",
     "merge.yaml: unknown key(s) lamda for MergeRecipe (known: base, density, drop, exclude, include, lambda, "
     "layer_weights, method, models, out, pos_conv, seed, trim, weights)"),
    ("models: [m]\n", "merge.yaml: missing base, out"),
    ("base: b\nmodels: []\nout: o\n", "merge.yaml: missing models"),
    ("base: b\nmodels: [m]\nout: o\nlayer_weights: {cnn: high}\n",
     "merge.yaml: layer_weights: cnn: expected float, got 'high'"),
    ("base: b\nmodels: [m]\nout: o\nlambda: true\n", "merge.yaml: weights: 0: expected float, got True"),
    ("base: b\nmodels: [m]\nout: o\nmethod: magic\n", "merge.yaml: unknown merge method 'magic'"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_merge_recipe(write(tmp_path, text))

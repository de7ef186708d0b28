"""Tensor names of a checkpoint: one canonical spelling, and named groups.

Groups are what users select and what the merge report speaks of:

    cnn         feature_extractor.*          MERT/HuBERT: the convolutional front end
    projection  feature_projection.*
    pos_conv    encoder.pos_conv_embed.*     the weight-normalised positional conv
    block.<l>   encoder.layers.<l>.*         transformer block l
    final_norm  encoder.layer_norm.*
    front_end   front_end.*                  efficient encoders: the 25 Hz front end
    block.<l>   blocks.<l>.*                 Branchformer/Conformer block l
    final_norm  norm.*
    heads       pre-training heads (final_proj, label_embs_concat, heads.*)
    other       anything else (e.g. masked_spec_embed)
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

from ..models.hf_layout import CheckpointError, canonical_key, common_prefix

_GROUPS = [
    (re.compile(r"feature_extractor\."), "cnn"),
    (re.compile(r"feature_projection\."), "projection"),
    (re.compile(r"encoder\.pos_conv_embed\."), "pos_conv"),
    (re.compile(r"encoder\.layers\.(\d+)\."), "block.{}"),
    (re.compile(r"encoder\.layer_norm\."), "final_norm"),
    (re.compile(r"(final_proj|label_embs_concat|heads)\b"), "heads"),
    (re.compile(r"front_end\."), "front_end"),
    (re.compile(r"blocks\.(\d+)\."), "block.{}"),
    (re.compile(r"norm\."), "final_norm"),
]


def group_of(key: str) -> str:
    """The named group a canonical tensor name belongs to."""
    for pattern, name in _GROUPS:
        match = pattern.match(key)
        if match:
            return name.format(*match.groups())
    return "other"


def selected(key: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    """Whether `key` takes part in a merge. A selector is a glob over the tensor name or over its
    group name: `block.*`, `cnn`, `encoder.layers.1[01].attention.*`. Exclusion wins."""
    def matches(selectors: list[str]) -> bool:
        return any(fnmatchcase(key, s) or fnmatchcase(group_of(key), s) for s in selectors)

    return (not include or matches(include)) and not (exclude and matches(exclude))


def canonical_names(keys: list[str], source: object) -> dict[str, str]:
    """canonical name -> stored name (see `hf_layout.canonical_key`); two stored names with one
    canonical spelling are an error naming both."""
    prefix, names = common_prefix(keys), {}
    for key in keys:
        canonical = canonical_key(key, prefix)
        if canonical in names:
            raise CheckpointError(f"{source}: tensors {names[canonical]!r} and {key!r} are the same tensor "
                                  f"spelled twice ({canonical!r})")
        names[canonical] = key
    return names

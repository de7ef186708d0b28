"""Tiny checkpoints for merge tests: a base and adapted copies with known task vectors."""

import pytest
import torch

from melos import load_encoder


def perturbed(base_dir, out_dir, seed, scale=0.01, frozen=("feature_extractor.",)):
    """A copy of the base with seeded noise added to every float tensor outside `frozen`."""
    model = load_encoder(base_dir)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point() and not name.startswith(frozen):
                p.add_(torch.randn(p.shape, generator=g) * scale)
    model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(base dir, [three adapted dirs]); the adapted models leave the CNN front end frozen."""
    root = tmp_path_factory.mktemp("merge")
    torch.manual_seed(0)
    base = load_encoder("mert-tiny").save_pretrained(root / "base")
    return base, [perturbed(base, root / f"culture{i}", seed=i) for i in range(3)]


@pytest.fixture
def perturb():
    """`perturbed`, for tests that build their own base."""
    return perturbed

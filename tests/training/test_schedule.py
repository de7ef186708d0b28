"""Warm-up + cosine schedule against hand-computed values of the spec's formula."""

import math

import pytest

from melos.training.schedule import warmup_cosine


def test_stage1_of_culturemert():
    # multi-culture stage 1: 2,250 steps, warm-up 10% to 5e-4, cosine to 5e-5
    lr = [warmup_cosine(s, 2250, 225, 5e-4, 5e-5) for s in range(2250)]
    assert lr[0] == pytest.approx(5e-4 / 225)
    assert lr[224] == pytest.approx(5e-4)  # t = T_warm: the peak
    halfway = 225 + (2250 - 225) // 2 - 1  # t - T_warm = (T_end - T_warm) / 2 (rounded down)
    t = halfway + 1
    expected = 5e-5 + (5e-4 - 5e-5) / 2 * (1 + math.cos(math.pi * (t - 225) / (2250 - 225)))
    assert lr[halfway] == pytest.approx(expected)
    assert lr[-1] == pytest.approx(5e-5)
    assert all(a <= b for a, b in zip(lr[:224], lr[1:225])) and all(a >= b for a, b in zip(lr[224:], lr[225:]))


def test_no_warmup_and_degenerate_stages():
    assert warmup_cosine(0, 10, 0, 1.0, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 10)))
    assert warmup_cosine(20, 10, 2, 2.0, 1.0) == 1.0  # past the end: the floor
    assert warmup_cosine(2, 3, 3, 2.0, 1.0) == 2.0  # an all-warm-up stage ends at the peak
    assert warmup_cosine(0, 1, 1, 2.0, 1.0) == 2.0


def test_linear_decay():
    from melos.training.schedule import warmup_linear

    lr = [warmup_linear(s, 10, 2, 1.0, 0.0) for s in range(10)]
    assert lr == pytest.approx([0.5, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0])

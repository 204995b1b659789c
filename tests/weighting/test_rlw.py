"""Random loss weighting: a fresh softmax of normal draws each step, reproducible from the global seed."""

from __future__ import annotations

import torch
from _helpers import context

from multitask.weighting import RLW


def test_weights_are_a_fresh_random_point_of_the_simplex() -> None:
    weighting = RLW()
    weighting.setup(["a", "b", "c"])
    torch.manual_seed(0)
    first = weighting.weights(torch.ones(3), context(True, True, True))
    second = weighting.weights(torch.ones(3), context(True, True, True))
    assert (first >= 0).all() and abs(first.sum().item() - 1) < 1e-6
    assert not torch.equal(first, second)
    torch.manual_seed(0)
    assert torch.equal(first, torch.softmax(torch.randn(3), dim=0))


def test_absent_task_gets_weight_zero() -> None:
    weighting = RLW()
    weighting.setup(["a", "b", "c"])
    weights = weighting.weights(torch.ones(3), context(True, False, True))
    assert weights[1] == 0 and abs(weights.sum().item() - 1) < 1e-6

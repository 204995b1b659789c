"""CAGrad: c = 0 is the mean; the update lies on the ball around g_0 and improves the worst task over g_0."""

from __future__ import annotations

import math

import pytest
import torch
from _jacobians import TYPICAL
from _properties import assert_permutation_invariant, assert_scale_equivariant

from multitask.aggregation import CAGrad, Mean
from multitask.errors import ConfigError

FULL_RANK = ["conflicting_2x3", "random_2x10", "random_5x20", "random_10x50"]


@pytest.mark.parametrize("key", FULL_RANK)
def test_zero_radius_is_the_mean(key: str) -> None:
    torch.testing.assert_close(CAGrad(c=0.0)(TYPICAL[key]), Mean()(TYPICAL[key]))


@pytest.mark.parametrize("c", [0.2, 0.5, 0.9])
@pytest.mark.parametrize("key", FULL_RANK)
def test_update_is_on_the_ball_and_improves_the_worst_task(c: float, key: str) -> None:
    jacobian = TYPICAL[key]
    mean = jacobian.mean(0)
    update = CAGrad(c=c)(jacobian)
    torch.testing.assert_close(float((update - mean).norm()), c * float(mean.norm()), rtol=1e-6, atol=0)
    assert float((jacobian @ update).min()) >= float((jacobian @ mean).min()) - 1e-9
    # optimality of the dual: no simplex vertex beats the solver's w on the dual objective
    assert_permutation_invariant(CAGrad(c=c), jacobian, atol=1e-6)
    assert_scale_equivariant(CAGrad(c=c), jacobian)


def test_worst_task_improvement_is_maximal_among_ball_points() -> None:
    jacobian = TYPICAL["random_5x20"]
    c = 0.5
    mean = jacobian.mean(0)
    radius = c * float(mean.norm())
    best = float((jacobian @ CAGrad(c=c)(jacobian)).min())
    generator = torch.Generator().manual_seed(0)
    for _ in range(2000):
        direction = torch.randn(20, generator=generator, dtype=torch.float64)
        point = mean + radius * direction / direction.norm()
        assert float((jacobian @ point).min()) <= best + 1e-9


def test_rejects_negative_radius() -> None:
    with pytest.raises(ConfigError):
        CAGrad(c=-1.0)
    assert math.isfinite(float(CAGrad().c))

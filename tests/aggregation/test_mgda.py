"""MGDA: the update is the min-norm point of the convex hull of the task gradients (KKT conditions)."""

from __future__ import annotations

import pytest
import torch
from _jacobians import DEGENERATE, TYPICAL
from _properties import (
    assert_min_norm_kkt,
    assert_non_conflicting,
    assert_permutation_invariant,
    assert_scale_equivariant,
)

from multitask.aggregation import MGDA

CASES = {**TYPICAL, **DEGENERATE}


@pytest.mark.parametrize("key", list(CASES))
def test_weights_satisfy_the_kkt_conditions_of_the_min_norm_qp(key: str) -> None:
    jacobian = CASES[key]
    scale = float(jacobian.abs().max()) or 1.0
    unit = jacobian / scale  # KKT tolerances are absolute: check on the unit-scaled problem
    assert_min_norm_kkt(MGDA().weights(unit @ unit.T), unit)


@pytest.mark.parametrize("key", list(TYPICAL))
def test_update_conflicts_with_no_task_and_is_symmetric(key: str) -> None:
    jacobian = TYPICAL[key]
    assert_non_conflicting(MGDA()(jacobian), jacobian)
    assert_permutation_invariant(MGDA(), jacobian)
    assert_scale_equivariant(MGDA(), jacobian)


def test_pareto_stationary_point_gives_zero_update() -> None:
    jacobian = torch.tensor([[1.0, 2.0], [-1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(MGDA()(jacobian), torch.zeros(2, dtype=torch.float64), atol=1e-12, rtol=0)


def test_matches_brute_force_on_the_simplex() -> None:
    jacobian = TYPICAL["random_5x20"][:3]
    grid = torch.linspace(0, 1, 201, dtype=torch.float64)
    best = min(
        float((torch.stack([a, b, 1 - a - b]) @ jacobian).norm())
        for a in grid
        for b in grid
        if float(a + b) <= 1 + 1e-12
    )
    assert float(MGDA()(jacobian).norm()) <= best + 1e-9

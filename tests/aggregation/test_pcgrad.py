"""PCGrad: the T = 2 closed form, no projection without conflict, reproducible random order."""

from __future__ import annotations

import torch
from _jacobians import TYPICAL

from multitask.aggregation import PCGrad


def _closed_form(g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
    dot = g1 @ g2
    if dot >= 0:
        return g1 + g2
    return (g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)


def test_two_tasks_match_the_closed_form() -> None:
    for key in ("conflicting_2x3", "random_2x10", "opposite_2x4"):
        g1, g2 = TYPICAL[key]
        torch.testing.assert_close(PCGrad()(TYPICAL[key]), _closed_form(g1, g2))


def test_projected_gradients_do_not_conflict_with_the_other_for_two_tasks() -> None:
    jacobian = TYPICAL["conflicting_2x3"]
    weights = PCGrad().weights(jacobian @ jacobian.T)
    g1, g2 = jacobian
    first = g1 + (weights[1] - 1) * g2  # g1^PC = g1 + c g2 with c = w_2 - 1
    torch.testing.assert_close(first @ g2, torch.tensor(0.0, dtype=torch.float64), atol=1e-12, rtol=0)


def test_without_conflict_the_update_is_the_sum() -> None:
    jacobian = TYPICAL["aligned_3x5"]
    assert bool(((jacobian @ jacobian.T) >= 0).all())
    torch.testing.assert_close(PCGrad()(jacobian), jacobian.sum(0))


def test_generator_makes_the_random_order_reproducible() -> None:
    jacobian = TYPICAL["random_10x50"]
    first = PCGrad(generator=torch.Generator().manual_seed(5))(jacobian)
    second = PCGrad(generator=torch.Generator().manual_seed(5))(jacobian)
    torch.testing.assert_close(first, second, rtol=0, atol=0)

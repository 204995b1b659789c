"""Nash-MTL: α_t (g_t · update) = 1 for every task; scale-free update; warm start in the state; no solution warns."""

from __future__ import annotations

import pytest
import torch
from _jacobians import DEGENERATE, TYPICAL
from _properties import assert_permutation_invariant

from multitask.aggregation import AggregationWarning, NashMTL

FULL_RANK = [
    "conflicting_2x3",
    "aligned_3x5",
    "random_2x10",
    "random_5x20",
    "random_10x50",
    "tiny_scale_3x8",
    "huge_scale_3x8",
]


@pytest.mark.parametrize("key", FULL_RANK)
def test_bargaining_solution_condition(key: str) -> None:
    jacobian = TYPICAL[key]
    weights = NashMTL().weights(jacobian @ jacobian.T)
    assert bool((weights > 0).all())
    products = weights * (jacobian @ (weights @ jacobian))
    torch.testing.assert_close(products, torch.ones_like(products), rtol=1e-7, atol=0)
    assert_permutation_invariant(NashMTL(), jacobian)


def test_update_does_not_depend_on_the_gradients_scale() -> None:
    jacobian = TYPICAL["random_5x20"]
    torch.testing.assert_close(NashMTL()(1e6 * jacobian), NashMTL()(jacobian))


def test_warm_start_is_kept_per_task_and_checkpointed() -> None:
    aggregator = NashMTL()
    aggregator.setup(3)
    aggregator(TYPICAL["random_2x10"], [0, 2])
    assert float(aggregator.previous[1]) == 1.0 and float(aggregator.previous[0]) != 1.0
    assert "previous" in aggregator.state_dict()


def test_linearly_dependent_gradients_reuse_previous_weights_with_a_warning() -> None:
    with pytest.warns(AggregationWarning, match="previous weights"):
        update = NashMTL()(DEGENERATE["rank_deficient_4x7"])
    assert bool(torch.isfinite(update).all())

"""UPGrad and DualProj: no conflict with any task; the projections are the closest non-conflicting points."""

from __future__ import annotations

import pytest
import torch
from _jacobians import DEGENERATE, TYPICAL
from _properties import assert_non_conflicting, assert_permutation_invariant, assert_scale_equivariant

from multitask.aggregation import DualProj, GramianAggregator, UPGrad

CASES = {**TYPICAL, **DEGENERATE}


@pytest.mark.parametrize("aggregator", [UPGrad(), DualProj()], ids=repr)
@pytest.mark.parametrize("key", list(CASES))
def test_update_conflicts_with_no_task(aggregator: GramianAggregator, key: str) -> None:
    assert_non_conflicting(aggregator(CASES[key]), CASES[key])


@pytest.mark.parametrize("aggregator", [UPGrad(), DualProj()], ids=repr)
@pytest.mark.parametrize("key", ["conflicting_2x3", "random_5x20", "rank_deficient_4x7"])
def test_permutation_invariant_and_scale_equivariant(aggregator: GramianAggregator, key: str) -> None:
    assert_permutation_invariant(aggregator, TYPICAL[key])
    assert_scale_equivariant(aggregator, TYPICAL[key])


@pytest.mark.parametrize("key", ["conflicting_2x3", "random_5x20", "random_10x50"])
def test_dualproj_weights_satisfy_the_projection_kkt(key: str) -> None:
    # y = ḡ + Jᵀλ with λ = v − 1/T ≥ 0 and λ_t (g_t · y) = 0: y is the projection of ḡ on the dual cone.
    jacobian = TYPICAL[key] / TYPICAL[key].abs().max()
    weights = DualProj().weights(jacobian @ jacobian.T)
    multipliers = weights - 1 / jacobian.shape[0]
    products = jacobian @ (weights @ jacobian)
    assert bool((multipliers >= -1e-10).all())
    torch.testing.assert_close(multipliers * products, torch.zeros_like(products), atol=1e-9, rtol=0)


def test_without_conflict_both_return_the_mean() -> None:
    jacobian = TYPICAL["aligned_3x5"]
    torch.testing.assert_close(UPGrad()(jacobian), jacobian.mean(0))
    torch.testing.assert_close(DualProj()(jacobian), jacobian.mean(0))


def test_upgrad_is_half_pcgrad_for_two_tasks_whose_projections_stay_in_the_cone() -> None:
    # For T = 2, π_J(g_1) = g_1 − (g_1·g_2/‖g_2‖²) g_2 when that point still has g_1 · π ≥ 0.
    jacobian = TYPICAL["conflicting_2x3"]
    g1, g2 = jacobian
    dot = g1 @ g2
    expected = ((g1 - dot / (g2 @ g2) * g2) + (g2 - dot / (g1 @ g1) * g1)) / 2
    torch.testing.assert_close(UPGrad()(jacobian), expected)

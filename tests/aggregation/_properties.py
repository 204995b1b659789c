"""Assertions on an aggregator's output shared by the per-method tests."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation import Aggregator


def assert_non_conflicting(update: Tensor, jacobian: Tensor, rtol: float = 1e-7) -> None:
    """``J · update ≥ 0`` up to round-off relative to ``‖J‖ ‖update‖``."""
    tolerance = rtol * float(jacobian.norm()) * float(update.norm()) + 1e-12 * float(jacobian.norm()) ** 2
    products = jacobian @ update
    assert bool((products >= -tolerance).all()), f"conflicts: J·update = {products.tolist()}"


def assert_permutation_invariant(aggregator: Aggregator, jacobian: Tensor, atol: float = 1e-8) -> None:
    """Permuting the rows does not change the update."""
    permutation = torch.randperm(jacobian.shape[0], generator=torch.Generator().manual_seed(0))
    expected, got = aggregator(jacobian), aggregator(jacobian[permutation])
    torch.testing.assert_close(got, expected, atol=atol * (1 + float(expected.norm())), rtol=1e-6)


def assert_scale_equivariant(aggregator: Aggregator, jacobian: Tensor, factor: float = 7.0) -> None:
    """``A(c J) = c A(J)`` for ``c > 0``."""
    expected = factor * aggregator(jacobian)
    torch.testing.assert_close(
        aggregator(factor * jacobian), expected, atol=1e-8 * (1 + float(expected.norm())), rtol=1e-6
    )


def assert_min_norm_kkt(weights: Tensor, jacobian: Tensor, atol: float = 1e-8) -> None:
    """KKT of ``min_{w ∈ Δ} ‖Jᵀ w‖²``: ``w ∈ Δ``, ``g_t · d ≥ ‖d‖²`` for all t, with equality where ``w_t > 0``."""
    assert bool((weights >= -atol).all()) and abs(float(weights.sum()) - 1) < 1e-9
    update = weights @ jacobian
    products = jacobian @ update
    norm2 = float(update @ update)
    scale = atol * (1 + float(jacobian.norm()) ** 2)
    assert bool((products >= norm2 - scale).all()), (products, norm2)
    support = weights > 1e-6
    torch.testing.assert_close(products[support], torch.full_like(products[support], norm2), atol=scale, rtol=1e-6)

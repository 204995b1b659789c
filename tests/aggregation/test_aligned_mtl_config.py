"""Aligned-MTL (condition number 1 after alignment) and ConFIG (equal cosines, conflict-free)."""

from __future__ import annotations

import pytest
import torch
from _jacobians import TYPICAL
from _properties import assert_non_conflicting, assert_permutation_invariant, assert_scale_equivariant

from multitask.aggregation import AlignedMTL, ConFIG

FULL_RANK = ["conflicting_2x3", "aligned_3x5", "random_2x10", "random_5x20", "random_10x50"]


@pytest.mark.parametrize("key", FULL_RANK)
def test_aligned_mtl_update_is_the_mean_of_the_aligned_jacobian(key: str) -> None:
    jacobian = TYPICAL[key]
    u, s, vh = torch.linalg.svd(jacobian, full_matrices=False)
    aligned = s.min() * u @ vh  # all singular values equal σ_min
    torch.testing.assert_close(AlignedMTL()(jacobian), aligned.mean(0))
    assert_permutation_invariant(AlignedMTL(), jacobian)
    assert_scale_equivariant(AlignedMTL(), jacobian)


def test_aligned_mtl_keeps_orthogonal_equal_norm_gradients() -> None:
    jacobian = 2.0 * torch.eye(3, 5, dtype=torch.float64)
    torch.testing.assert_close(AlignedMTL()(jacobian), jacobian.mean(0))


@pytest.mark.parametrize("key", FULL_RANK)
def test_config_has_equal_cosines_and_no_conflict(key: str) -> None:
    jacobian = TYPICAL[key]
    update = ConFIG()(jacobian)
    cosines = jacobian @ update / (jacobian.norm(dim=1) * update.norm())
    torch.testing.assert_close(cosines, cosines.mean().expand_as(cosines), rtol=1e-7, atol=1e-10)
    assert_non_conflicting(update, jacobian)
    # its length is the sum of the projections of the task gradients on its direction (Eq. 2)
    unit = update / update.norm()
    torch.testing.assert_close(update.norm(), (jacobian @ unit).sum())
    assert_permutation_invariant(ConFIG(), jacobian)
    assert_scale_equivariant(ConFIG(), jacobian)

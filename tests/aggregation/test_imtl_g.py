"""IMTL-G: equal projections of the update on every unit task gradient; weights sum to one."""

from __future__ import annotations

import pytest
import torch
from _jacobians import TYPICAL
from _properties import assert_permutation_invariant, assert_scale_equivariant

from multitask.aggregation import IMTLG

FULL_RANK = ["conflicting_2x3", "aligned_3x5", "random_2x10", "random_5x20", "random_10x50", "huge_scale_3x8"]


@pytest.mark.parametrize("key", FULL_RANK)
def test_update_has_equal_projections_on_unit_gradients(key: str) -> None:
    jacobian = TYPICAL[key]
    weights = IMTLG().weights(jacobian @ jacobian.T)
    projections = (jacobian @ (weights @ jacobian)) / jacobian.norm(dim=1)
    torch.testing.assert_close(projections, projections.mean().expand_as(projections), rtol=1e-7, atol=0)
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert_permutation_invariant(IMTLG(), jacobian)
    assert_scale_equivariant(IMTLG(), jacobian)


def test_matches_the_papers_closed_form() -> None:
    # Eq. 9: α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹ with D_t = g_1 − g_t, U_t = u_1 − u_t; α_1 = 1 − Σ α_{2:T}.
    jacobian = TYPICAL["random_5x20"]
    units = jacobian / jacobian.norm(dim=1, keepdim=True)
    differences, unit_differences = jacobian[0] - jacobian[1:], units[0] - units[1:]
    rest = jacobian[0] @ unit_differences.T @ torch.linalg.inv(differences @ unit_differences.T)
    expected = torch.cat([1 - rest.sum(0, keepdim=True), rest]) @ jacobian
    torch.testing.assert_close(IMTLG()(jacobian), expected)

"""IMTL-G: the combination of task gradients with equal projections on every unit task gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("imtl_g")
class IMTLG(GramianAggregator):
    r"""Impartial MTL, gradient part: ``update = Σ_t α_t g_t`` with ``Σ_t α_t = 1`` and equal ``update · u_t``.

    ``u_t = g_t / ‖g_t‖``. The paper's closed form ``α_{2:T} = g_1 Uᵀ (D Uᵀ)⁻¹`` (Eq. 9, with
    ``D``, ``U`` the differences ``g_1 − g_t``, ``u_1 − u_t``) is equivalent to
    ``α ∝ G⁺ d`` with ``d_t = ‖g_t‖`` (normalised to sum to 1): then ``G α = c d``, i.e.
    ``g_t · update = c ‖g_t‖`` for every task. The pseudo-inverse extends it to linearly dependent
    gradients (as in Quinton & Rey 2024); when ``Σ G⁺ d = 0`` (e.g. all gradients zero) the
    weights are zero. No hyper-parameters.

    References:
        Liu et al., "Towards Impartial Multi-task Learning", ICLR 2021.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``α = G⁺ d / Σ(G⁺ d)`` with ``d = √diag(G)``."""
        scale = float(gramian.diagonal().max())
        if scale <= 0.0:
            return torch.zeros(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)
        normalised = gramian / scale  # α is invariant to a common scale; this keeps pinv well conditioned
        norms = normalised.diagonal().clamp(min=0.0).sqrt()
        v = torch.linalg.pinv(normalised, hermitian=True) @ norms
        total = v.sum()
        if float(total.abs()) < 1e-12:
            return torch.zeros_like(v)
        result: Tensor = v / total
        return result

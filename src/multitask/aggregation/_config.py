"""ConFIG: a conflict-free direction with equal cosine to every task gradient."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("config")
class ConFIG(GramianAggregator):
    r"""Conflict-free inverse gradients (Eq. 2 of the paper).

    With unit gradients ``ĝ_t = g_t / ‖g_t‖`` stacked in ``Û``: ``g_u = U(Û⁺ 1)`` (``U`` normalises
    to unit length), so ``g_u`` has the same positive cosine with every task gradient when they
    are linearly independent, and the update is ``(Σ_t g_t · g_u) g_u``. From the Gramian: with
    ``D = diag(‖g_t‖)`` and the cosine matrix ``C = D⁻¹ G D⁻¹``, ``Û⁺ 1 = Ûᵀ C⁺ 1 = Jᵀ x`` with
    ``x = D⁻¹ C⁺ 1``, so the weights are ``x (1ᵀ G x) / (xᵀ G x)``; no ``[T, P]`` pseudo-inverse is
    needed. A zero gradient's row is left out of the direction (its unit vector is zero).
    No hyper-parameters.

    References:
        Liu, Chu & Thuerey, "ConFIG: Towards Conflict-free Training of Physics Informed Neural
        Networks", ICLR 2025. arXiv:2408.11104.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``x (1ᵀ G x) / (xᵀ G x)`` with ``x = D⁻¹ C⁺ 1``."""
        norms = gramian.diagonal().clamp(min=0.0).sqrt()
        inverse_norms = torch.where(norms > 0, 1.0 / norms.clamp(min=torch.finfo(norms.dtype).tiny), 0.0)
        cosines = inverse_norms[:, None] * gramian * inverse_norms[None, :]
        x = inverse_norms * (torch.linalg.pinv(cosines, hermitian=True) @ torch.ones_like(norms))
        squared_length = x @ gramian @ x
        if float(squared_length) <= 0:
            return torch.zeros_like(norms)
        result: Tensor = x * (gramian.sum(dim=0) @ x) / squared_length
        return result

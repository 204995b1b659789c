"""Aligned-MTL: align the task gradients' principal components to make the Jacobian well conditioned."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("aligned_mtl")
class AlignedMTL(GramianAggregator):
    r"""Aligned-MTL (Algorithm 1 of the paper): ``update = Ĵᵀ w`` with ``Ĵ = √λ_min U Vᵀ``.

    With the SVD ``J = U Σ Vᵀ`` (rank ``r``), the aligned Jacobian ``Ĵ = σ_r U Vᵀ`` has all
    singular values equal to the smallest non-zero one, so its condition number is 1. From the
    Gramian ``G = U Λ Uᵀ``: ``Ĵ = B J`` with ``B = √λ_r U_r Λ_r^{-1/2} U_rᵀ``, so the task weights
    are ``B w`` with ``w = 1/T`` (the mean, as in TorchJD; the paper's task weights). Eigenvalues
    below ``T · ε · λ_max`` count as zero; a zero Jacobian gives a zero update. For ``T = 1``
    the update is ``g / T = g``.

    References:
        Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component Alignment for Multi-Task
        Learning", CVPR 2023. arXiv:2305.19000.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``B (1/T)`` with ``B = √λ_r U_r Λ_r^{-1/2} U_rᵀ``."""
        num_tasks = gramian.shape[0]
        preference = torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64, device=gramian.device)
        values, vectors = torch.linalg.eigh(gramian)
        tolerance = float(values.max()) * num_tasks * torch.finfo(torch.float64).eps
        keep = values > tolerance
        if not bool(keep.any()):
            return torch.zeros(num_tasks, dtype=torch.float64, device=gramian.device)
        values, vectors = values[keep], vectors[:, keep]
        balance = values.min().sqrt() * (vectors / values.sqrt()) @ vectors.T
        result: Tensor = balance @ preference
        return result

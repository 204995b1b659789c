"""PCGrad: project each task gradient off the gradients it conflicts with, then sum."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("pcgrad")
class PCGrad(GramianAggregator):
    r"""Projecting conflicting gradients (Algorithm 1 of the paper), then summing them.

    For each task ``i``: ``g_i^PC ← g_i``; for each ``j ≠ i`` in a random order: if
    ``g_i^PC · g_j < 0`` then ``g_i^PC ← g_i^PC − (g_i^PC · g_j / ‖g_j‖²) g_j``. The update is
    ``Σ_i g_i^PC``. Each ``g_i^PC`` is a combination ``Σ_k c_ik g_k`` of the original gradients, so
    everything is computed from the Gramian and the weights are ``w = Σ_i c_i``. For ``T = 2`` the
    order does not matter and the result has a closed form; for ``T ≥ 3`` it is random, drawn from
    ``generator`` (its state is checkpointed) or PyTorch's global generator. Zero gradients are
    never projected on.

    Args:
        generator: Source of the random task orders; pass one for reproducible runs.

    References:
        Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020. arXiv:2001.06782.
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``Σ_i c_i`` where ``g_i^PC = Σ_k c_ik g_k`` after the projections."""
        num_tasks = gramian.shape[0]
        gram = gramian.cpu()
        weights = torch.zeros(num_tasks, dtype=torch.float64)
        for i in range(num_tasks):
            coefficients = torch.zeros(num_tasks, dtype=torch.float64)
            coefficients[i] = 1.0
            for j in self.randperm(num_tasks):
                if j == i or gram[j, j] <= 0:
                    continue
                dot = float(coefficients @ gram[:, j])
                if dot < 0.0:
                    coefficients[j] -= dot / float(gram[j, j])
            weights += coefficients
        return weights.to(gramian.device)

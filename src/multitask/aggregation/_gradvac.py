"""GradVac: raise each pair's gradient similarity towards its running average."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry
from multitask.errors import check_number


@registry.register("gradvac")
class GradVac(GramianAggregator):
    r"""Gradient vaccine (Algorithm 2 of the paper, on the whole shared model), then the sum.

    For each task ``i`` and each ``j ≠ i`` in a random order, with ``φ_ij = cos(g_i^PC, g_j)`` and
    its target ``φ̂_ij`` (an EMA over steps, initially 0): if ``φ_ij < φ̂_ij`` then
    ``g_i^PC ← g_i^PC + g_j ‖g_i^PC‖ (φ̂_ij √(1 − φ_ij²) − φ_ij √(1 − φ̂_ij²)) / (‖g_j‖ √(1 − φ̂_ij²))``
    (Eq. 5); then ``φ̂_ij ← (1 − β) φ̂_ij + β φ_ij``. The update is ``Σ_i g_i^PC``. Everything is
    computed from the Gramian. The targets ``φ̂ [T, T]`` are a buffer (checkpointed); an absent
    task's targets are not updated. Pairs with a zero gradient are skipped. With ``φ̂ = 0`` it
    reduces to PCGrad's projection.

    Args:
        beta: EMA rate ``β`` of the similarity targets (0.5 in LibMTL's default; the paper uses 1e-2).
        generator: Source of the random task orders; pass one for reproducible runs.

    References:
        Wang, Tsvetkov, Firat & Cao, "Gradient Vaccine: Investigating and Improving Multi-task
        Optimization in Massively Multilingual Models", ICLR 2021. arXiv:2010.05874.
    """

    targets: Tensor

    is_stateful = True

    def __init__(self, beta: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.beta = check_number("beta", beta, minimum=0.0, strict=False)
        if self.beta > 1:
            raise ValueError(f"beta must be in [0, 1]; got {beta}")
        self.generator = generator
        self.register_buffer("targets", torch.zeros(0, 0, dtype=torch.float64))

    def _hyperparameters(self) -> dict[str, float]:
        return {"beta": self.beta}

    def reset(self, num_tasks: int) -> None:
        """Similarity targets start at 0."""
        self.targets = torch.zeros(num_tasks, num_tasks, dtype=torch.float64, device=self.targets.device)

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``Σ_i c_i`` where ``g_i^PC = Σ_k c_ik g_k`` after the corrections."""
        num_tasks = gramian.shape[0]
        gram = gramian.cpu()
        targets = self.targets.cpu()
        norms = gram.diagonal().clamp(min=0.0).sqrt()
        weights = torch.zeros(num_tasks, dtype=torch.float64)
        for i in range(num_tasks):
            coefficients = torch.zeros(num_tasks, dtype=torch.float64)
            coefficients[i] = 1.0
            others = [j for j in range(num_tasks) if j != i]
            for j in [others[k] for k in self.randperm(num_tasks - 1)]:
                if norms[i] <= 0 or norms[j] <= 0:
                    continue
                norm_i = math.sqrt(max(float(coefficients @ gram @ coefficients), 0.0))
                if norm_i <= 0:
                    continue
                rho = float(coefficients @ gram[:, j]) / (norm_i * float(norms[j]))
                rho = min(max(rho, -1.0), 1.0)
                target = float(targets[tasks[i], tasks[j]])
                if rho < target:
                    root_rho, root_target = math.sqrt(1 - rho**2), math.sqrt(max(1 - target**2, 0.0))
                    if root_target > 0:
                        coefficients[j] += norm_i * (target * root_rho - rho * root_target) / (norms[j] * root_target)
                targets[tasks[i], tasks[j]] = (1 - self.beta) * target + self.beta * rho
            weights += coefficients
        self.targets.copy_(targets)
        return weights.to(gramian.device)

"""GradDrop: keep, per coordinate, only the gradients of one sign, drawn by their sign purity."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import Aggregator, registry


@registry.register("graddrop")
class GradDrop(Aggregator):
    r"""Gradient sign dropout (Algorithm 1, lines 10–15 of the paper), applied to the shared parameters' gradients.

    Per coordinate: the positive sign purity ``P = ½ (1 + Σ_t g_t / Σ_t |g_t|)`` (``½`` where all
    gradients are zero); with ``U ~ Uniform(0, 1)`` drawn once per coordinate, task ``t`` keeps its
    component if ``P > U`` and ``g_t > 0`` or ``P < U`` and ``g_t < 0``; the update is the sum of the
    kept components. Coordinates where all tasks agree keep everything. The paper applies it to
    the gradients at the shared representation (``f`` = identity, no leak); here it acts on the
    parameter gradients, as TorchJD's and LibMTL's versions do. Not a Gramian method.

    Args:
        generator: Source of ``U``; pass one for reproducible runs.

    References:
        Chen et al., "Just Pick a Sign: Optimizing Deep Multitask Models with Gradient Sign
        Dropout", NeurIPS 2020. arXiv:2010.06808.
    """

    def __init__(self, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.generator = generator

    def aggregate(self, jacobian: Tensor, tasks: list[int]) -> Tensor:
        """The sum of the components that survive sign dropout.

        Where ``P > U`` the positive components survive, and their sum is ``(Σ g + Σ |g|) / 2``;
        where ``P < U`` the negative ones, ``(Σ g − Σ |g|) / 2``; where ``P = U`` none. So two
        reductions over the tasks suffice (no ``[T, P]`` mask).
        """
        total = jacobian.sum(dim=0)
        magnitude = jacobian.abs().sum(dim=0)
        purity = torch.where(magnitude > 0, 0.5 * (1 + total / magnitude.clamp(min=torch.finfo(total.dtype).tiny)), 0.5)
        draws = torch.rand(purity.shape, generator=self.generator, dtype=torch.float64).to(jacobian)
        positive, negative = 0.5 * (total + magnitude), 0.5 * (total - magnitude)
        return torch.where(purity > draws, positive, torch.where(purity < draws, negative, torch.zeros_like(total)))

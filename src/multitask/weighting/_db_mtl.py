"""DB-MTL's loss balancing: minimise the sum of log losses."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.errors import check_number
from multitask.weighting._base import StepContext, Weighting, registry


@registry.register("db_mtl")
class DBMTL(Weighting):
    r"""The loss-scale half of dual-balancing MTL: ``L = Σ_t log(L_t + ε)``.

    The log transform makes every task's objective scale-free: its gradient is
    ``Σ_t ∇L_t / (L_t + ε)``, so the weights are ``w_t = 1 / (L_t + ε)`` (detached; Sec. 3.1 of
    the paper). DB-MTL's other half, rescaling each task's gradient to the largest gradient
    norm, is a gradient-level method and belongs to `multitask.aggregation`, not here. Absent
    tasks get weight 0; a negative or non-finite loss raises an error naming the task (``ε``
    is the safeguard for a zero loss). Cost: negligible.

    Args:
        eps: ε, added to each loss inside the log.

    References:
        Lin, Ye, Zhang & Kwok, "Dual-Balancing for Multi-Task Learning", 2023. arXiv:2308.12029.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = check_number("eps", eps)

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = 1 / (L_t + ε)`` for the present tasks."""
        present = context.present.to(losses.device)
        self.check_positive(losses, present)
        values = 1.0 / (losses.detach() + self.eps)
        return torch.where(present, values, torch.zeros_like(values))

"""IMTL-L: learnable loss scales that make the scaled task losses equal."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from multitask.weighting._base import StepContext, Weighting, registry


@registry.register("imtl_l")
class IMTLL(Weighting):
    r"""Impartial MTL, loss balance: ``L = Σ_t (e^{s_t} L_t − s_t)`` with learnable ``s_t``.

    Minimising over ``s_t`` drives every scaled loss to ``e^{s_t} L_t = 1`` (for a fixed loss the
    optimum is ``s_t = −log L_t``), so no task dominates by its scale (Sec. 3.2 of the paper,
    Eq. 8). The weights are ``w_t = e^{s_t}`` and the penalty ``−Σ_t s_t`` over the present
    tasks. The ``s_t`` start at 0 and are ``nn.Parameter``s trained by the Trainer's optimiser.
    This is IMTL's loss-level part only; its gradient-level part (IMTL-G) needs the per-task
    gradients of `multitask.aggregation`. A negative loss raises an error naming the task (the
    objective would be unbounded below). Cost: negligible.

    References:
        Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial Multi-task Learning",
        ICLR 2021.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_scales = nn.Parameter(torch.zeros(0))

    def reset(self, num_tasks: int) -> None:
        """``s_t = 0`` for every task."""
        self.log_scales = nn.Parameter(torch.zeros(num_tasks))

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = e^{s_t}`` (differentiable in ``s_t``)."""
        self.check_positive(losses, context.present, why="is unbounded below for a negative loss")
        return torch.exp(self.log_scales.to(losses))

    def penalty(self, context: StepContext) -> Tensor:
        """``−Σ_t s_t`` over the present tasks."""
        return -(self.log_scales * context.present.to(self.log_scales)).sum()

"""Geometric loss strategy: minimise the geometric mean of the task losses."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.errors import check_number
from multitask.weighting._base import StepContext, Weighting, registry


@registry.register("gls")
class GLS(Weighting):
    r"""Geometric loss strategy: the objective is ``G = (Π_t L_t)^{1/T}``, the geometric mean.

    Its gradient is ``∇G = Σ_t G / (T L_t) ∇L_t``, so the weights are ``w_t = G / (T L_t)``
    (detached; then ``w · L = G``): each task is weighted by the inverse of its loss, which makes
    the objective invariant to the tasks' loss scales. Computed in log space,
    ``log G = mean_t log L_t``, over the present tasks only (absent tasks get weight 0). Losses
    are clamped at ``eps`` before the log, the safeguard for a present task whose loss is
    exactly 0; a negative or non-finite loss raises an error naming the task. Cost: negligible.

    Args:
        eps: Floor of the losses inside the log.

    References:
        Chennupati, Sistu, Yogamani & Rawashdeh, "MultiNet++: Multi-Stream Feature Aggregation
        and Geometric Loss Strategy for Multi-Task Learning", CVPR Workshops 2019. arXiv:1904.08492.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = check_number("eps", eps)

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = G / (T L_t)`` over the present tasks."""
        present = context.present.to(losses.device)
        self.check_positive(losses, present)
        if not bool(present.any()):
            return torch.zeros_like(losses)
        values = losses.detach().clamp(min=self.eps)
        count = int(present.sum())
        log_mean = values.log()[present].sum() / count
        return torch.where(present, log_mean.exp() / (count * values), torch.zeros_like(values))

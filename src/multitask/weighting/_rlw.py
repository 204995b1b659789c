"""Random loss weighting: fresh random weights every step."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.weighting._base import StepContext, Weighting, masked_softmax, registry


@registry.register("rlw")
class RLW(Weighting):
    r"""Random loss weighting: ``w = softmax(λ̃)`` with ``λ̃ ~ N(0, I_T)`` drawn anew every step.

    The weights sum to one (Sec. 3 of the paper, its normal-distribution variant). They are drawn
    from PyTorch's global generator, which the Trainer seeds and checkpoints, so a run and its
    resumed copy draw the same weights. Absent tasks are left out of the softmax (weight 0).
    Cost: negligible. No hyper-parameters.

    References:
        Lin, Ye, Xu, Shi & Zhang, "Reasonable Effectiveness of Random Weighting: A Litmus Test
        for Multi-Task Learning", TMLR 2022. arXiv:2111.10603.
    """

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """A fresh draw ``softmax(λ̃)`` over the present tasks."""
        draws = torch.randn(losses.shape).to(losses)  # drawn on the CPU generator: same on every device
        return masked_softmax(draws, context.present.to(losses.device))

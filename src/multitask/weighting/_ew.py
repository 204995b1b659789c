"""Equal weighting: the plain sum of task losses."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.weighting._base import StepContext, Weighting, registry


@registry.register("ew")
class EW(Weighting):
    r"""Equal weighting, the classic joint objective of hard parameter sharing: ``L = Σ_t L_t``.

    Every weight is 1, so the update is the gradient of the sum of task losses (Caruana 1997).
    Cost: nothing beyond the losses. No hyper-parameters.
    """

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = 1`` for every task."""
        return torch.ones_like(losses)

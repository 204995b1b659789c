"""Sum aggregation: the plain gradient of the summed losses."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("sum")
class Sum(GramianAggregator):
    r"""The summed task gradients: ``update = Σ_t g_t`` (weights ``w_t = 1``).

    Equal to the gradient of equal weighting (`multitask.weighting.EW`), so ``Strategy(aggregation=Sum())``
    and the default strategy make the same update. Cost: one weighted sum. No hyper-parameters.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``w_t = 1``."""
        return torch.ones(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)

"""Mean aggregation: the average of the task gradients."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry


@registry.register("mean")
class Mean(GramianAggregator):
    r"""The average task gradient: ``update = (1/T) Σ_t g_t`` (weights ``w_t = 1/T``).

    The plain gradient of the mean loss; the baseline every other aggregator is compared with.
    Cost: one weighted sum. No hyper-parameters.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``w_t = 1/T``."""
        num_tasks = gramian.shape[0]
        return torch.full((num_tasks,), 1.0 / num_tasks, dtype=gramian.dtype, device=gramian.device)

"""Linear scalarisation: fixed task weights from a user's preference vector."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from multitask.weighting._base import StepContext, Weighting, check_num_tasks, check_preference, registry


@registry.register("linear")
class Linear(Weighting):
    r"""Linear scalarisation with a preference vector: ``L = T Σ_t λ_t L_t`` with ``λ_t ≥ 0``, ``Σ_t λ_t = 1``.

    The weights are fixed, ``w_t = T λ_t``: the uniform preference ``λ_t = 1/T`` is equal weighting,
    and any other vector keeps the same overall scale (so the learning rate keeps its meaning).
    Fixed user weights ``c_t`` are the preference ``λ_t = c_t / Σ_s c_s`` (their ratios are kept).
    Minimising a linear scalarisation finds the Pareto-optimal points on the convex part of the
    front (e.g. Miettinen, "Nonlinear Multiobjective Optimization", 1999, Sec. 3.1).
    Cost: nothing beyond the losses.

    Args:
        preference: One non-negative entry per task, in the order of the model's tasks, summing
            to one (within ``1e-6``).

    Raises:
        ConfigError: An entry is negative or not finite, the entries do not sum to one, or (at
            `setup`) their number differs from the number of tasks.
    """

    def __init__(self, preference: Sequence[float]) -> None:
        super().__init__()
        self.preference = check_preference(preference)

    def reset(self, num_tasks: int) -> None:
        """Check that there is one preference entry per task."""
        check_num_tasks("preference", self.preference, self.task_names)

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = T λ_t``."""
        return torch.tensor(self.preference, dtype=losses.dtype, device=losses.device) * len(self.preference)

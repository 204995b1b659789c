"""UPGrad: the average of the task gradients, each projected onto the dual cone of all of them."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry
from multitask.aggregation._solvers import project_weights


@registry.register("upgrad")
class UPGrad(GramianAggregator):
    r"""Unconflicting projection of gradients: ``update = (1/T) Σ_i π_J(g_i)``.

    ``π_J(x) = argmin_{y : J y ≥ 0} ‖y − x‖`` projects onto the dual cone of the task gradients
    (the directions that conflict with no task). In weights: ``π_J(g_i) = Jᵀ v_i`` with
    ``v_i = argmin_{v ≥ e_i} vᵀ G v`` (Prop. 1 of the paper), so ``w = (1/T) Σ_i v_i``. The update
    conflicts with no task (``J · update ≥ 0``), equals ``g`` for ``T = 1``, and scales with the
    gradients. The QPs are solved exactly by NNLS; a failed solve leaves that ``g_i`` unprojected
    (with a warning). No hyper-parameters.

    References:
        Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024. arXiv:2406.16232.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``(1/T) Σ_i v_i`` with ``v_i = argmin_{v ≥ e_i} vᵀ G v``."""
        num_tasks = gramian.shape[0]
        lower = torch.eye(num_tasks, dtype=torch.float64, device=gramian.device) / num_tasks
        return project_weights(lower, gramian, "UPGrad").sum(dim=0)

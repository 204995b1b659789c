"""DualProj: the mean gradient projected onto the dual cone of the task gradients (GEM)."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry
from multitask.aggregation._solvers import project_weights


@registry.register("dualproj")
class DualProj(GramianAggregator):
    r"""Projection of the mean gradient onto the dual cone: ``update = argmin_{y : J y ≥ 0} ‖y − ḡ‖``.

    ``ḡ = (1/T) Σ_t g_t``. This is the projection of Gradient Episodic Memory (Eq. 10–13 of
    Lopez-Paz & Ranzato), applied to all task gradients at once; in weights ``w = argmin_{v ≥ 1/T}
    vᵀ G v``. The update conflicts with no task, equals ``g`` for ``T = 1``, and equals ``ḡ``
    when ``ḡ`` conflicts with no task. The QP is solved exactly by NNLS; if it fails the update
    is ``ḡ`` (with a warning). No hyper-parameters.

    References:
        Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017.
        arXiv:1706.08840.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``argmin_{v ≥ 1/T} vᵀ G v``."""
        num_tasks = gramian.shape[0]
        lower = torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64, device=gramian.device)
        return project_weights(lower, gramian, "DualProj")

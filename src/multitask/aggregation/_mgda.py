"""MGDA: the minimum-norm point of the convex hull of the task gradients."""

from __future__ import annotations

from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry
from multitask.aggregation._solvers import min_norm_weights


@registry.register("mgda")
class MGDA(GramianAggregator):
    r"""Multiple-gradient descent: ``update = Σ_t w_t g_t`` with ``w = argmin_{w ∈ Δ} ‖Σ_t w_t g_t‖²``.

    ``Δ`` is the probability simplex, so the update is the min-norm point of the convex hull of
    the task gradients (Eq. 3 of Sener & Koltun; Désidéri 2012). It is zero exactly when the
    current point is Pareto-stationary; otherwise ``g_t · update ≥ ‖update‖² > 0`` for every
    task (the KKT conditions of the QP), so no task's loss increases to first order.

    The QP is solved exactly (not by Frank–Wolfe iterations) as a non-negative least-squares
    problem on the Gramian (see `min_norm_weights`); for the ``T`` of multi-task learning this
    costs microseconds. If the solver fails the weights fall back to ``1/T`` with a warning.
    The weights are invariant to a common scale of the gradients, and the update scales with them.
    The paper's upper-bound variant MGDA-UB (Sec. 3.3: the same QP on the gradients w.r.t. the
    shared representation, one backward pass through the encoder) is
    ``Strategy(aggregation=MGDA(), on="representation")``. No hyper-parameters.

    References:
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
        arXiv:1810.04650.
    """

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """The simplex weights of the min-norm point."""
        return min_norm_weights(gramian, "MGDA")

"""Nash-MTL: the Nash bargaining solution between tasks."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry, warn
from multitask.errors import check_number


@registry.register("nash_mtl")
class NashMTL(GramianAggregator):
    r"""Multi-task learning as a bargaining game: ``update = Σ_t α_t g_t`` with ``G α = 1/α``, ``α > 0``.

    The Nash bargaining solution in the ball (Theorem 3.1 of the paper): ``α_t (g_t · update) = 1``
    for every task, so each task's improvement is inversely proportional to its weight. The paper
    approximates the solution with a few convex-concave iterations (cvxpy); here it is solved to
    machine precision as the stationary point of the strictly convex
    ``½ αᵀ G α − Σ_t log α_t`` by damped Newton steps, warm-started from the previous step's
    solution (checkpointed state, kept per task). The update therefore has the paper's scale:
    ``‖update‖`` is about ``√T`` times a unit step whatever the gradients' scale, and for ``T = 1``
    it is ``g / ‖g‖``. The paper's implementation clips the update's norm (``max_norm = 1``); use
    the Trainer's ``grad_clip`` for that. The solution exists when the gradients are linearly
    independent; when they are not (or Newton fails), the previous weights are reused (ones at
    the first step), with a warning, as the official implementation keeps its previous ``α``.

    Args:
        max_iter: Newton iterations per step.
        tol: Stop when ``‖G α − 1/α‖ ≤ tol`` (on the Gramian scaled to unit largest diagonal).

    References:
        Navon et al., "Multi-Task Learning as a Bargaining Game", ICML 2022. arXiv:2202.01017.
    """

    previous: Tensor

    is_stateful = True

    def __init__(self, *, max_iter: int = 100, tol: float = 1e-9) -> None:
        super().__init__()
        self.max_iter = int(check_number("max_iter", max_iter, minimum=1, strict=False))
        self.tol = check_number("tol", tol)
        self.register_buffer("previous", torch.ones(0, dtype=torch.float64))

    def reset(self, num_tasks: int) -> None:
        """Warm start from ``α = 1`` (on the scaled Gramian), as the paper's code."""
        self.previous = torch.ones(num_tasks, dtype=torch.float64, device=self.previous.device)

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``α`` with ``G α = 1/α`` (``α = α' / √s`` where ``α'`` solves it for ``G' = G / s``)."""
        scale = float(gramian.diagonal().max())
        if scale <= 0.0:
            return torch.zeros(gramian.shape[0], dtype=torch.float64, device=gramian.device)
        gram = gramian / scale
        start = self.previous[tasks].to(gram.device)
        alpha = self._solve(gram, start)
        if alpha is None:
            warn("Nash-MTL: no solution of Gα = 1/α (linearly dependent gradients?); reusing the previous weights")
            alpha = start
        else:
            self.previous[tasks] = alpha.to(self.previous.device)
        result: Tensor = alpha / scale**0.5
        return result

    def _solve(self, gram: Tensor, alpha: Tensor) -> Tensor | None:
        def value(a: Tensor) -> float:
            return float(0.5 * a @ gram @ a - a.log().sum())

        eye = torch.eye(len(alpha), dtype=gram.dtype, device=gram.device)
        current = value(alpha)
        for _ in range(self.max_iter):
            gradient = gram @ alpha - 1.0 / alpha
            if float(gradient.norm()) <= self.tol:
                return alpha
            hessian = gram + eye / alpha**2
            step = torch.linalg.solve(hessian, gradient)
            decrease = float(gradient @ step)
            t = 1.0
            while t > 1e-12:
                candidate = alpha - t * step
                if bool((candidate > 0).all()):
                    new = value(candidate)
                    if new <= current - 1e-4 * t * decrease:
                        break
                t /= 2
            else:
                return None
            alpha, current = candidate, new
            if float(alpha.max()) > 1e8:  # unbounded below: no solution
                return None
        return alpha if float((gram @ alpha - 1.0 / alpha).norm()) <= max(self.tol, 1e-6) else None

"""CAGrad: the update that maximises the worst task improvement within a ball around the mean gradient."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor

from multitask.aggregation._base import GramianAggregator, registry, warn
from multitask.errors import check_number


@registry.register("cagrad")
class CAGrad(GramianAggregator):
    r"""Conflict-averse gradient descent (Algorithm 1 of the paper).

    With ``g_0 = (1/T) Σ_t g_t`` and ``φ = c² ‖g_0‖²``, the dual problem is
    ``w* = argmin_{w ∈ Δ} g_wᵀ g_0 + √φ ‖g_w‖`` with ``g_w = Σ_t w_t g_t``, and the update is
    ``d = g_0 + (√φ / ‖g_w*‖) g_w*``, i.e. weights ``1/T + (√φ / ‖g_w*‖) w*``. It equals ``g_0``
    for ``c = 0`` and approaches MGDA's direction as ``c`` grows. The update is not rescaled
    (the official code's optional ``rescale`` divides by ``1 + c²``). The convex problem on the
    simplex is solved with SciPy's SLSQP on the Gramian (scaled to unit largest diagonal; the
    weights do not depend on the scale). When ``g_w* ≈ 0`` the point is Pareto-stationary and the
    update is zero; when SLSQP fails the update is ``g_0`` (both with a warning).

    Args:
        c: Radius of the ball around ``g_0``, relative to ``‖g_0‖`` (0.4 or 0.5 in the paper's experiments).
        norm_eps: ``‖g_w*‖`` below this (relative to the largest gradient norm) counts as zero.

    References:
        Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for Multi-task Learning",
        NeurIPS 2021. arXiv:2110.14048.
    """

    def __init__(self, c: float = 0.5, *, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.c = check_number("c", c, minimum=0.0, strict=False)
        self.norm_eps = check_number("norm_eps", norm_eps, minimum=0.0, strict=False)

    def _hyperparameters(self) -> dict[str, float]:
        return {"c": self.c}

    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """``1/T + (√φ / ‖g_w*‖) w*``."""
        num_tasks = gramian.shape[0]
        uniform = np.full(num_tasks, 1.0 / num_tasks)
        scale = float(gramian.diagonal().max())
        if scale <= 0.0 or self.c == 0.0:
            return torch.from_numpy(uniform).to(gramian.device)
        gram = (gramian / scale).cpu().numpy()
        linear = gram @ uniform  # g_i · g_0
        sqrt_phi = self.c * math.sqrt(max(float(uniform @ linear), 0.0))

        def objective(w: np.ndarray) -> float:
            return float(w @ linear + sqrt_phi * math.sqrt(max(float(w @ gram @ w), 0.0) + 1e-14))

        def jacobian(w: np.ndarray) -> np.ndarray:
            norm = math.sqrt(max(float(w @ gram @ w), 0.0) + 1e-14)
            result: np.ndarray = linear + sqrt_phi * (gram @ w) / norm
            return result

        result = minimize(
            objective,
            uniform,
            jac=jacobian,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * num_tasks,
            constraints=[{"type": "eq", "fun": lambda w: float(w.sum() - 1.0), "jac": lambda w: np.ones_like(w)}],
            options={"ftol": 1e-12, "maxiter": 500},
        )
        if not result.success or not np.all(np.isfinite(result.x)):
            warn(f"CAGrad: SLSQP did not converge ({result.message}); the update is the mean gradient")
            return torch.from_numpy(uniform).to(gramian.device)
        w = np.clip(result.x, 0.0, None)
        w /= w.sum()
        g_w_norm = math.sqrt(max(float(w @ gram @ w), 0.0))
        if g_w_norm < self.norm_eps:
            warn("CAGrad: the task gradients are Pareto-stationary (g_w ≈ 0); the update is zero")
            return torch.zeros(num_tasks, dtype=torch.float64, device=gramian.device)
        return torch.from_numpy(uniform + (sqrt_phi / g_w_norm) * w).to(gramian.device)

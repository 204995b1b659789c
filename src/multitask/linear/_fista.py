"""Accelerated proximal gradient (FISTA) with backtracking, adaptive restart and two stopping rules."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.floating]
SmoothFn = Callable[[Vector, bool], "tuple[float, Vector | None]"]
ProxFn = Callable[[Vector, float], Vector]
GapFn = Callable[[Vector, float, Vector], float]

_MAX_BACKTRACKS = 60


@dataclass
class FistaResult:
    """Outcome of :func:`fista`.

    Attributes:
        x: Final iterate.
        n_iter: Number of proximal-gradient steps taken.
        converged: Whether the stopping rule was met before ``max_iter``.
        criterion: Last value of the stopping quantity (duality gap, or relative change).
        threshold: The value ``criterion`` had to reach.
        rule: ``"duality gap"`` or ``"relative change"``.
        lipschitz: Final step-size constant ``L`` (a warm start for the next solve).
    """

    x: Vector
    n_iter: int
    converged: bool
    criterion: float
    threshold: float
    rule: str
    lipschitz: float


def _initial_lipschitz(smooth: SmoothFn, x: Vector, grad: Vector) -> float:
    """Lower estimate of the gradient's Lipschitz constant from one secant along ``−grad``."""
    direction = -grad if np.any(grad) else np.ones_like(x)
    scale = 1e-3 * max(float(np.linalg.norm(x)), 1.0) / max(float(np.linalg.norm(direction)), 1e-30)
    probe = x + scale * direction
    _, grad_probe = smooth(probe, True)
    assert grad_probe is not None
    step = float(np.linalg.norm(probe - x))
    estimate = float(np.linalg.norm(grad_probe - grad)) / step if step > 0 else 1.0
    return estimate if math.isfinite(estimate) and estimate > 0 else 1.0


def fista(
    smooth: SmoothFn,
    prox: ProxFn,
    x0: Vector,
    *,
    max_iter: int,
    tol: float,
    is_quadratic: bool,
    gap: GapFn | None = None,
    gap_scale: float = 1.0,
    lipschitz: float | None = None,
) -> FistaResult:
    r"""Minimises ``F(x) = f(x) + h(x)``, ``f`` smooth convex, ``h`` convex with an exact prox.

    FISTA (Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
    problems", SIAM J. Imaging Sci. 2009) with backtracking on ``L``: each step is
    ``x⁺ = prox_{h/L}(y − ∇f(y)/L)``, accepted once ``f(x⁺) ≤ f(y) + ⟨∇f(y), x⁺ − y⟩ + (L/2)‖x⁺ − y‖²``
    (for quadratic ``f`` the equivalent, cancellation-free test ``⟨∇f(x⁺) − ∇f(y), x⁺ − y⟩ ≤ L‖x⁺ − y‖²``),
    otherwise ``L ← 2L``. The momentum restarts whenever ``⟨y − x⁺, x⁺ − x⟩ > 0`` (gradient scheme of
    O'Donoghue & Candès, "Adaptive restart for accelerated gradient schemes", FoCM 2015).

    Stopping rule: with ``gap`` given, stop when the duality gap at ``x⁺`` is ``≤ tol · gap_scale``;
    otherwise stop when the relative change ``‖x⁺ − x‖₂ ≤ tol · max(‖x⁺‖₂, tiny)``.

    For quadratic ``f`` the gradient and value at ``y = x⁺ + β(x⁺ − x)`` follow from those at ``x⁺``
    and ``x`` exactly, so each step costs one evaluation of ``f`` (plus any backtracking).

    Args:
        smooth: ``(x, need_grad) -> (f(x), ∇f(x) or None)``.
        prox: ``(v, step) -> prox_{step·h}(v)``.
        x0: Starting point (warm start).
        max_iter: Maximum number of steps.
        tol: Tolerance of the stopping rule.
        is_quadratic: Whether ``f`` is quadratic.
        gap: Optional ``(x, f(x), ∇f(x)) -> duality gap``; needs ``is_quadratic``.
        gap_scale: Scale of the gap tolerance.
        lipschitz: Starting ``L`` (e.g. from a previous solve on a path).

    Returns:
        The final iterate and convergence information.
    """
    x = np.array(x0, copy=True)
    fx, gx = smooth(x, True)
    assert gx is not None
    lip = lipschitz if lipschitz is not None else _initial_lipschitz(smooth, x, gx)
    use_gap = gap is not None and is_quadratic
    rule = "duality gap" if use_gap else "relative change"
    threshold = tol * gap_scale if use_gap else tol
    y, fy, gy = x, fx, gx
    t = 1.0
    criterion = math.inf
    for n_iter in range(1, max_iter + 1):
        for _ in range(_MAX_BACKTRACKS):
            z = prox(y - gy / lip, 1.0 / lip)
            d = z - y
            dd = float(np.vdot(d, d))
            fz, gz = smooth(z, is_quadratic)
            if is_quadratic:
                assert gz is not None
                accepted = float(np.vdot(gz - gy, d)) <= lip * dd * (1.0 + 1e-6)
            else:
                slack = 1e-10 * max(1.0, abs(fy))
                accepted = fz <= fy + float(np.vdot(gy, d)) + 0.5 * lip * dd + slack
            if accepted or not math.isfinite(lip):
                break
            lip *= 2.0
        step = z - x
        if use_gap:
            assert gz is not None
            criterion = gap(z, fz, gz)  # type: ignore[misc]
        else:
            norm_z = float(np.linalg.norm(z))
            criterion = float(np.linalg.norm(step)) / max(norm_z, np.finfo(z.dtype).tiny)
            if norm_z == 0.0 and not np.any(step):
                criterion = 0.0
        if criterion <= threshold:
            return FistaResult(z, n_iter, True, criterion, threshold, rule, lip)
        if float(np.vdot(y - z, step)) > 0:
            t = 1.0  # restart: the momentum points uphill
        t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_next
        y = z + beta * step
        if is_quadratic:
            assert gz is not None and gx is not None
            gy = gz + beta * (gz - gx)
            fy = fz + beta * float(np.vdot(gz, step)) + 0.5 * beta * beta * float(np.vdot(gz - gx, step))
        else:
            fy, grad_y = smooth(y, True)
            assert grad_y is not None
            gy = grad_y
        x, fx, gx, t = z, fz, gz, t_next
    return FistaResult(x, max_iter, False, criterion, threshold, rule, lip)

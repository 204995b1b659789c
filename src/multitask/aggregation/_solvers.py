"""Exact small quadratic programs on the Gramian, solved by non-negative least squares (SciPy's NNLS)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from torch import Tensor

from multitask.aggregation._base import warn


def gramian_factor(gramian: Tensor) -> np.ndarray:
    """A ``[T, T]`` matrix ``A`` with ``AᵀA = G`` (float64, from the eigendecomposition; G is PSD)."""
    values, vectors = torch.linalg.eigh(gramian.double().cpu())
    root = values.clamp(min=0.0).sqrt()
    factor: np.ndarray = (vectors * root).T.numpy()  # (V √Λ)ᵀ: rows are the eigen-directions scaled
    return factor


def _nnls(matrix: np.ndarray, target: np.ndarray, what: str) -> np.ndarray | None:
    try:
        solution, _ = nnls(matrix, target, maxiter=100 * matrix.shape[1])
    except RuntimeError as error:  # SciPy raises when its active-set iterations run out
        warn(f"{what}: the NNLS solver did not converge ({error}); using the fallback stated in the docs")
        return None
    if not np.all(np.isfinite(solution)):
        warn(f"{what}: the NNLS solver returned non-finite values; using the fallback stated in the docs")
        return None
    return np.asarray(solution)


def min_norm_weights(gramian: Tensor, what: str = "MGDA") -> Tensor:
    r"""Weights ``w`` on the simplex minimising ``wᵀ G w``: the min-norm point of the rows' convex hull.

    Exact: with ``AᵀA = G``, the NNLS ``min_{z ≥ 0} ‖[A; 1ᵀ] z − [0; 1]‖`` projects ``(0, 1)`` on
    the cone of the lifted rows ``(g_i, 1)``; its solution is ``s · w*`` with
    ``s = 1 / (1 + ‖u*‖²) > 0``, so ``w* = z / Σ z``. Falls back to equal weights (with a warning)
    if the solver fails. ``G`` is scaled by its largest diagonal entry first (the weights are
    invariant to it).
    """
    num_tasks = gramian.shape[0]
    scale = float(gramian.diagonal().max())
    uniform = torch.full((num_tasks,), 1.0 / num_tasks, dtype=torch.float64, device=gramian.device)
    if num_tasks == 1 or scale <= 0.0:
        return uniform
    factor = gramian_factor(gramian / scale)
    lifted = np.vstack([factor, np.ones((1, num_tasks))])
    target = np.zeros(num_tasks + 1)
    target[-1] = 1.0
    z = _nnls(lifted, target, what)
    if z is None or z.sum() <= 0:
        return uniform
    return torch.from_numpy(z / z.sum()).to(gramian.device)


def project_weights(lower: Tensor, gramian: Tensor, what: str) -> Tensor:
    r"""``argmin_{v ≥ u} vᵀ G v`` for each row ``u`` of ``lower [K, T]`` (a ``[T]`` vector is one row).

    ``J ᵀ v`` is then the projection of ``Jᵀ u`` onto the dual cone ``{x : J x ≥ 0}`` (the dual of
    the QP in Quinton & Rey 2024, Prop. 1). With ``AᵀA = G`` and ``v = u + z`` this is the NNLS
    ``min_{z ≥ 0} ‖A z + A u‖``. On solver failure the row falls back to ``v = u`` (no projection),
    with a warning.
    """
    rows = lower.reshape(-1, lower.shape[-1]).double()
    scale = float(gramian.diagonal().max())
    if scale <= 0.0:
        return rows.reshape(lower.shape).clone()
    factor = gramian_factor(gramian / scale)
    result = rows.clone()
    for k, u in enumerate(rows.cpu().numpy()):
        z = _nnls(factor, -factor @ u, what)
        if z is not None:
            result[k] += torch.from_numpy(z).to(result.device)
    return result.reshape(lower.shape)

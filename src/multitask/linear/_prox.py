"""Exact proximal operators and projections used by the linear multi-task solvers.

Each function solves its defining problem in closed form (or by an exact finite search), so the
solvers in this package never approximate a proximal step. With ``prox_{t h}(V)`` we mean
``argmin_U (1/2) ‖U − V‖²_F + t h(U)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

__all__ = [
    "group_soft_threshold",
    "project_capped_simplex",
    "project_l1_ball",
    "project_spectral_capped",
    "prox_linf",
    "singular_value_threshold",
    "soft_threshold",
]


def soft_threshold(values: Array, threshold: float) -> Array:
    """Prox of ``threshold ‖·‖_1``: ``sign(v) max(|v| − threshold, 0)`` entrywise.

    Args:
        values: Any array.
        threshold: Non-negative threshold.

    Returns:
        Array of the same shape and dtype.
    """
    return np.sign(values) * np.maximum(np.abs(values) - threshold, 0.0)


def group_soft_threshold(values: Array, threshold: float, axis: int = 1) -> Array:
    """Prox of ``threshold Σ_g ‖v_g‖_2``, the groups being the slices along ``axis``.

    With ``axis=1`` the groups are the rows of a ``[d, T]`` matrix (the L2,1 norm of joint feature
    selection); with ``axis=0`` they are its columns (the L1,2 norm of outlier tasks). Each group is
    scaled by ``max(0, 1 − threshold / ‖v_g‖_2)``.

    Args:
        values: Matrix ``[d, T]``.
        threshold: Non-negative threshold.
        axis: Axis summed inside each group.

    Returns:
        Matrix of the same shape.
    """
    norms = np.linalg.norm(values, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
    return (values * scale).astype(values.dtype, copy=False)


def project_l1_ball(values: Array, radius: float) -> Array:
    """Euclidean projection of each row onto ``{u : ‖u‖_1 ≤ radius}``.

    Sort-based algorithm of Duchi, Shalev-Shwartz, Singer & Chandra, "Efficient projections onto
    the l1-ball for learning in high dimensions", ICML 2008 (Fig. 1), applied to ``|v|``.

    Args:
        values: Matrix ``[m, k]``; each row is projected.
        radius: Non-negative radius.

    Returns:
        Matrix of the same shape.
    """
    absolute = np.abs(values)
    if radius <= 0.0:
        return np.zeros_like(values)
    inside = absolute.sum(axis=1) <= radius
    sorted_desc = -np.sort(-absolute, axis=1)
    cumulative = np.cumsum(sorted_desc, axis=1) - radius
    ranks = np.arange(1, values.shape[1] + 1, dtype=values.dtype)
    active = sorted_desc - cumulative / ranks > 0
    # the last active index rho gives the shift theta = (Σ_{i ≤ rho} u_i − radius) / rho
    rho = values.shape[1] - 1 - np.argmax(active[:, ::-1], axis=1)
    theta = cumulative[np.arange(values.shape[0]), rho] / (rho + 1)
    theta = np.where(inside, 0.0, theta)
    projected = np.sign(values) * np.maximum(absolute - theta[:, None], 0.0)
    return np.asarray(projected, dtype=values.dtype)


def prox_linf(values: Array, threshold: float) -> Array:
    """Prox of ``threshold Σ_j ‖v_j‖_∞`` over the rows ``v_j`` (the L1,∞ norm of the dirty model).

    By Moreau's decomposition, ``prox_{t‖·‖_∞}(v) = v − P_{‖·‖_1 ≤ t}(v)``.

    Args:
        values: Matrix ``[d, T]``.
        threshold: Non-negative threshold.

    Returns:
        Matrix of the same shape.
    """
    return values - project_l1_ball(values, threshold)


def singular_value_threshold(values: Array, threshold: float) -> Array:
    """Prox of ``threshold ‖·‖_*``: soft-thresholds the singular values.

    Cai, Candès & Shen, "A singular value thresholding algorithm for matrix completion",
    SIAM J. Optim. 2010: ``U max(Σ − threshold, 0) Vᵀ`` for ``values = U Σ Vᵀ``.

    Args:
        values: Matrix ``[d, T]``.
        threshold: Non-negative threshold.

    Returns:
        Matrix of the same shape.
    """
    u, s, vt = np.linalg.svd(values, full_matrices=False)
    shrunk = np.maximum(s - threshold, 0.0)
    keep = shrunk > 0
    return np.asarray((u[:, keep] * shrunk[keep]) @ vt[keep], dtype=values.dtype)


def project_capped_simplex(values: Array, total: float) -> Array:
    """Projection onto ``{x : 0 ≤ x_i ≤ 1, Σ_i x_i = total}`` (requires ``0 ≤ total ≤ len(x)``).

    The solution is ``clip(v − θ, 0, 1)`` where ``s(θ) = Σ clip(v_i − θ, 0, 1)`` equals ``total``;
    ``s`` is piecewise linear and non-increasing with breakpoints ``v_i`` and ``v_i − 1``, so θ is
    found exactly by locating the segment and interpolating.

    Args:
        values: Vector ``[k]``.
        total: Required sum.

    Returns:
        Vector ``[k]``.
    """
    v = np.asarray(values, dtype=np.float64)
    breaks = np.unique(np.concatenate([v, v - 1.0]))
    sums = np.clip(v[None, :] - breaks[:, None], 0.0, 1.0).sum(axis=1)  # non-increasing in breaks
    if total >= sums[0]:
        theta = breaks[0] - (total - sums[0]) / max(len(v), 1)  # only when total = len(v)
    else:
        j = int(np.searchsorted(-sums, -total, side="right")) - 1  # sums[j] ≥ total > sums[j + 1]
        j = min(max(j, 0), len(breaks) - 2)
        lo, hi = sums[j], sums[j + 1]
        frac = 0.0 if lo == hi else (lo - total) / (lo - hi)
        theta = breaks[j] + frac * (breaks[j + 1] - breaks[j])
    return np.asarray(np.clip(v - theta, 0.0, 1.0), dtype=np.asarray(values).dtype)


def project_spectral_capped(matrix: Array, total: float) -> Array:
    """Projection of a symmetric matrix onto ``{M : 0 ⪯ M ⪯ I, tr M = total}``.

    The set is spectral, so the projection keeps the eigenvectors and projects the eigenvalues
    onto the capped simplex (Zhou, Chen & Ye, NIPS 2011, the CMTL relaxation's constraint set).

    Args:
        matrix: Matrix ``[T, T]`` (symmetrised before the eigendecomposition).
        total: Required trace, ``0 ≤ total ≤ T``.

    Returns:
        Matrix ``[T, T]``.
    """
    sym = 0.5 * (matrix + matrix.T)
    eigvals, eigvecs = np.linalg.eigh(sym)
    projected = project_capped_simplex(eigvals, total)
    return np.asarray((eigvecs * projected) @ eigvecs.T, dtype=matrix.dtype)

"""Clustered multi-task learning, convex relaxation (MALSAR's Least_CMTL and Logistic_CMTL)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty

Array = Any


def cluster_weights(sigma: Array, alpha: float, beta: float, n_clusters: int) -> Array:
    r"""Eigenvalues ``γ`` of the optimal ``M`` for singular values ``σ`` of ``W`` (largest first or any order).

    Solves ``min_γ Σ_i σ_i² / (β + α γ_i)`` s.t. ``0 ≤ γ_i ≤ 1``, ``Σ_i γ_i = k``: the problem in ``M``'s
    eigenvalues once its eigenvectors are those of ``WᵀW`` (Zhou, Chen & Ye 2011; Jacob, Bach & Vert
    2008). Its KKT conditions give ``γ_i = clip((s σ_i − β)/α, 0, 1)`` with ``s > 0`` fixed by
    ``Σ γ_i = k``; the sum is piecewise linear and non-decreasing in ``s``, so ``s`` is found exactly
    from its breakpoints. If at most ``k`` of the ``σ_i`` are non-zero, those get ``γ_i = 1`` and the
    remaining mass is spread evenly over the others (the objective does not see it).

    Args:
        sigma: Singular values ``[T]`` (zeros allowed).
        alpha: ``α > 0``.
        beta: ``β > 0``.
        n_clusters: ``k ≤ T``.

    Returns:
        ``γ [T]``.
    """
    sigma = np.asarray(sigma, dtype=np.float64)
    size = sigma.size
    positive = sigma > 0
    rank = int(np.count_nonzero(positive))
    if alpha <= 0 or rank == 0:
        return np.full(size, n_clusters / size)
    if rank <= n_clusters:
        gamma = np.where(positive, 1.0, (n_clusters - rank) / max(size - rank, 1))
        return np.asarray(gamma)
    s_pos = sigma[positive]
    breaks = np.unique(np.concatenate([beta / s_pos, (beta + alpha) / s_pos]))
    sums = np.clip((breaks[:, None] * s_pos[None, :] - beta) / alpha, 0.0, 1.0).sum(axis=1)
    j = int(np.searchsorted(sums, n_clusters, side="left"))  # sums[j - 1] < k ≤ sums[j]
    j = min(max(j, 1), breaks.size - 1)
    lo, hi = sums[j - 1], sums[j]
    frac = 1.0 if hi == lo else (n_clusters - lo) / (hi - lo)
    s = breaks[j - 1] + frac * (breaks[j] - breaks[j - 1])
    return np.asarray(np.clip((s * sigma - beta) / alpha, 0.0, 1.0))


class ClusteredPenalty(Penalty):
    r"""``min_M β (α + β) tr(W (βI + αM)⁻¹ Wᵀ)`` over ``{0 ⪯ M ⪯ I, tr M = k}``, a smooth function of ``W``.

    This is ``α η (1 + η) tr(W (ηI + M)⁻¹ Wᵀ)``, ``η = β / α``, of the cCMTL relaxation, with ``M``
    minimised out in closed form: for ``WᵀW = V diag(σ²) Vᵀ`` the optimal ``M = V diag(γ) Vᵀ``
    (:func:`cluster_weights`). The result is convex (a partial minimum of a jointly convex function)
    and, being also an infimum of quadratics in ``W`` of curvature ``≤ 2(α + β)``, smooth with a
    ``2(α + β)``-Lipschitz gradient ``2β(α + β) W (βI + αM)⁻¹`` (Danskin). It lies between the ridges
    ``β ‖W‖²_F`` (directions within the span of ``M``) and ``(α + β) ‖W‖²_F``.

    Solving in ``W`` alone avoids the joint ``(W, M)`` descent of MALSAR's Least_CMTL, whose curvature
    in ``M`` grows like ``α²(α + β)‖W‖²/β²`` and makes small ``β`` very slow to converge.
    """

    is_quadratic = False

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float, n_clusters: int) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta = alpha, beta
        self.n_clusters = min(n_clusters, n_tasks)

    def relation(self, coef: Array) -> tuple[Array, Array, Array, Array]:
        """Thin SVD ``W = U diag(σ) Vᵀ`` (``r = min(d, T)`` terms) and the optimal eigenvalues ``γ [T]`` of ``M``.

        ``M = V diag(γ) Vᵀ`` on the span of ``V``; the remaining ``T − r`` directions have ``σ = 0``,
        and their share of ``γ`` (the last entries) matters only to ``task_relation_``.
        """
        u, sigma, vt = np.linalg.svd(np.asarray(coef, dtype=np.float64), full_matrices=False)
        padded = np.concatenate([sigma, np.zeros(self.n_tasks - sigma.size)])
        gamma = cluster_weights(padded, self.alpha, self.beta, self.n_clusters)
        return u, sigma, vt, gamma

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        coef = blocks[0]
        u, sigma, vt, gamma = self.relation(coef)
        scale = self.beta * (self.alpha + self.beta)
        inverse = 1.0 / (self.beta + self.alpha * gamma[: sigma.size])
        if out is not None:  # 2 c W V diag(1/(β + αγ)) Vᵀ = 2 c U diag(σ/(β + αγ)) Vᵀ
            out[0] += (2.0 * scale * (u * (sigma * inverse)) @ vt).astype(coef.dtype, copy=False)
        return scale * float(np.dot(sigma * sigma, inverse))

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        coef = np.asarray(blocks[0], dtype=np.float64)
        squares, vectors = np.linalg.eigh(coef.T @ coef)  # ascending: reverse to pair with γ
        vectors = vectors[:, ::-1]
        gamma = cluster_weights(np.sqrt(np.maximum(squares[::-1], 0.0)), self.alpha, self.beta, self.n_clusters)
        return {"task_relation_": (vectors * gamma) @ vectors.T}


class _ClusteredParams:
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.01,
        *,
        n_clusters: int = 2,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.n_clusters = n_clusters
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _check_params(self) -> None:
        check_alpha_beta(alpha=self.alpha, beta=self.beta)
        if self.beta <= 0:
            raise ValueError(f"beta must be > 0 (the relaxation needs η = β/α > 0); got {self.beta!r}")
        if not (isinstance(self.n_clusters, (int, np.integer)) and self.n_clusters >= 1):
            raise ValueError(f"n_clusters must be an integer >= 1; got {self.n_clusters!r}")

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        alpha = self.alpha if alpha is None else alpha
        return ClusteredPenalty(n_features, n_tasks, alpha, self.beta, self.n_clusters)


@document
class LeastSquaresClustered(_ClusteredParams, LeastSquaresMTL):
    r"""Clustered multi-task least squares, convex relaxation (cCMTL).

        Minimises over ``W`` and ``M``:
        ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α η (1 + η) tr(W (ηI + M)⁻¹ Wᵀ)``, ``η = β / α``,
        subject to ``tr M = k``, ``0 ⪯ M ⪯ I``. The penalty lies between ``β‖W‖²_F`` (directions in the
        span of ``M``, i.e. within clusters) and ``(α + β)‖W‖²_F``: ``α`` pulls tasks towards ``k`` cluster
        centres, ``β`` is a global ridge. ``k = n_clusters`` is clipped to ``T``. ``M`` is minimised out in
        closed form (an eigendecomposition of ``WᵀW``), so FISTA runs on ``W`` alone, on a smooth objective.

        {data}

        Args:
            alpha: Cluster-structure weight ``α ≥ 0`` (MALSAR's ``ρ₁``).
            beta: Ridge weight ``β > 0`` (MALSAR's ``ρ₂``).
            n_clusters: Number of clusters ``k ≥ 1``.
    {common}

        Attributes:
            coef_: ``[T, d]``. task_relation_: ``M [T, T]``. intercept_, n_iter_, tasks_.

        References:
            Zhou, Chen & Ye, "Clustered multi-task learning via alternating structure optimization",
            NIPS 2011 (the relaxation of Jacob, Bach & Vert, "Clustered multi-task learning: a convex
            formulation", NIPS 2008).
    """


@document
class LogisticClustered(_ClusteredParams, LogisticMTL):
    r"""Clustered multi-task logistic regression, convex relaxation (cCMTL).

        Minimises ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α η (1 + η) tr(W (ηI + M)⁻¹ Wᵀ)``,
        ``η = β / α``, subject to ``tr M = k``, ``0 ⪯ M ⪯ I``; ``M`` is minimised out in closed form, as in
        :class:`LeastSquaresClustered`.

        {data}

        Args:
            alpha: Cluster-structure weight ``α ≥ 0``.
            beta: Ridge weight ``β > 0``.
            n_clusters: Number of clusters ``k ≥ 1``.
    {common}

        References:
            Zhou, Chen & Ye, "Clustered multi-task learning via alternating structure optimization", NIPS 2011.
    """

"""Clustered multi-task learning, convex relaxation (MALSAR's Least_CMTL and Logistic_CMTL)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty
from multitask.linear._prox import project_spectral_capped

Array = Any


class ClusteredPenalty(Penalty):
    r"""Blocks ``W [d, T]`` and ``M [T, T]``: ``α η (1 + η) tr(W (ηI + M)⁻¹ Wᵀ)``, ``η = β / α``, with
    ``M`` kept in ``{0 ⪯ M ⪯ I, tr M = k}`` by projection.

    Written as ``β (α + β) tr(W (βI + αM)⁻¹ Wᵀ)``, which is the same for ``α > 0`` and tends to the
    ridge ``β ‖W‖²_F`` as ``α → 0``. It is jointly convex in ``(W, M)`` and smooth on the feasible set.
    """

    is_quadratic = False

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float, n_clusters: int) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta = alpha, beta
        self.n_clusters = min(n_clusters, n_tasks)

    def shapes(self) -> list[tuple[int, int]]:
        return [(self.n_features, self.n_tasks), (self.n_tasks, self.n_tasks)]

    def initialise(self, blocks: list[Array]) -> None:
        blocks[1][...] = np.eye(self.n_tasks) * (self.n_clusters / self.n_tasks)

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        coef, relation = blocks
        scale = self.beta * (self.alpha + self.beta)
        inverse = np.linalg.inv(self.beta * np.eye(self.n_tasks) + self.alpha * relation)
        coef_inv = coef @ inverse
        if out is not None:
            out[0] += 2.0 * scale * coef_inv
            out[1] -= scale * self.alpha * (coef_inv.T @ coef_inv)
        return scale * float(np.vdot(coef_inv, coef))

    def prox(self, blocks: list[Array], step: float) -> None:
        blocks[1][...] = project_spectral_capped(blocks[1], float(self.n_clusters))

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        return {"task_relation_": blocks[1].copy()}


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
        centres, ``β`` is a global ridge. ``k = n_clusters`` is clipped to ``T``.

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
        ``η = β / α``, subject to ``tr M = k``, ``0 ⪯ M ⪯ I``.

        {data}

        Args:
            alpha: Cluster-structure weight ``α ≥ 0``.
            beta: Ridge weight ``β > 0``.
            n_clusters: Number of clusters ``k ≥ 1``.
    {common}

        References:
            Zhou, Chen & Ye, "Clustered multi-task learning via alternating structure optimization", NIPS 2011.
    """

"""Graph-regularised multi-task learning (MALSAR's Least_SRMTL and Logistic_SRMTL)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.errors import ShapeError
from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty
from multitask.linear._prox import soft_threshold

Array = Any


def complete_graph(n_tasks: int) -> Array:
    """Incidence matrix ``R [T, T(T−1)/2]`` with one column ``e_s − e_t`` per pair ``s < t``."""
    rows, cols = np.triu_indices(n_tasks, k=1)
    incidence = np.zeros((n_tasks, rows.size))
    incidence[rows, np.arange(rows.size)] = 1.0
    incidence[cols, np.arange(rows.size)] = -1.0
    return incidence


class GraphPenalty(Penalty):
    """``α ‖W R‖²_F + β ‖W‖_1 + (l2/2) ‖W‖²_F``, using ``R Rᵀ`` (a graph Laplacian for an incidence R)."""

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float, l2: float, laplacian: Array) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta, self.l2, self.laplacian = alpha, beta, l2, laplacian

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        coef = blocks[0]
        coupled = coef @ self.laplacian
        if out is not None:
            out[0] += 2.0 * self.alpha * coupled + self.l2 * coef
        return self.alpha * float(np.vdot(coupled, coef)) + 0.5 * self.l2 * float(np.vdot(coef, coef))

    def prox(self, blocks: list[Array], step: float) -> None:
        if self.beta > 0:
            blocks[0][...] = soft_threshold(blocks[0], step * self.beta)

    def value(self, blocks: list[Array]) -> float:
        return self.beta * float(np.abs(blocks[0]).sum())


class _GraphParams:
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.0,
        *,
        graph: Array | None = None,
        l2: float = 0.0,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.graph = graph
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _check_params(self) -> None:
        check_alpha_beta(alpha=self.alpha, beta=self.beta, l2=self.l2)

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        incidence = complete_graph(n_tasks) if self.graph is None else np.asarray(self.graph, dtype=float)
        if incidence.ndim != 2 or incidence.shape[0] != n_tasks or not np.all(np.isfinite(incidence)):
            raise ShapeError(
                f"graph must be a finite [n_tasks, n_edges] matrix with n_tasks={n_tasks}; got shape {incidence.shape}"
            )
        alpha = self.alpha if alpha is None else alpha
        return GraphPenalty(n_features, n_tasks, alpha, self.beta, self.l2, incidence @ incidence.T)


@document
class LeastSquaresGraph(_GraphParams, LeastSquaresMTL):
    r"""Graph-regularised multi-task least squares (SRMTL).

        Minimises ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖W R‖²_F + β ‖W‖_1 + (l2/2)‖W‖²_F``, where
        the columns of ``R [T, E]`` encode the task graph: an edge column ``e_s − e_t`` adds
        ``α ‖w_s − w_t‖²``. The default graph connects every pair of tasks, giving ``α T Σ_t ‖w_t − w̄‖²``.

        {data}

        Args:
            alpha: Graph weight ``α ≥ 0``.
            beta: L1 weight ``β ≥ 0``.
            graph: ``R [T, E]``; ``None`` for the complete graph.
            l2: Ridge weight ``≥ 0``.
    {common}

        References:
            Zhou, Chen & Ye, "MALSAR: Multi-tAsk Learning via StructurAl Regularization", 2011 (SRMTL);
            Evgeniou, Micchelli & Pontil, "Learning multiple tasks with kernel methods", JMLR 2005 (graph
            regularisation).
    """


@document
class LogisticGraph(_GraphParams, LogisticMTL):
    r"""Graph-regularised multi-task logistic regression (SRMTL).

        Minimises ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α ‖W R‖²_F + β ‖W‖_1
        + (l2/2)‖W‖²_F`` for a task graph ``R [T, E]`` (default: complete graph).

        {data}

        Args:
            alpha: Graph weight ``α ≥ 0``.
            beta: L1 weight ``β ≥ 0``.
            graph: ``R [T, E]``; ``None`` for the complete graph.
            l2: Ridge weight ``≥ 0``.
    {common}

        References:
            Zhou, Chen & Ye, "MALSAR", 2011 (SRMTL); Evgeniou, Micchelli & Pontil, JMLR 2005.
    """

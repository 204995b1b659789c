"""Low-rank multi-task learning with the trace (nuclear) norm (MALSAR's Least_Trace, Logistic_Trace)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import document
from multitask.linear._l21 import _L21Params
from multitask.linear._penalty import NormPenalty, Penalty
from multitask.linear._prox import singular_value_threshold

Array = Any


class TracePenalty(NormPenalty):
    """``α ‖W‖_* + (l2/2)‖W‖²_F``, ``‖W‖_*`` the sum of singular values."""

    @staticmethod
    def norm(matrix: Array) -> float:
        return float(np.linalg.svd(matrix, compute_uv=False).sum())

    @staticmethod
    def dual_norm(matrix: Array) -> float:
        return float(np.linalg.norm(matrix, 2)) if matrix.size else 0.0

    @staticmethod
    def prox_norm(matrix: Array, threshold: float) -> Array:
        return singular_value_threshold(matrix, threshold)


class _TraceParams(_L21Params):
    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return TracePenalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.l2)


@document
class LeastSquaresTrace(_TraceParams, LeastSquaresMTL):
    r"""Multi-task least squares with a low-rank (trace-norm) coupling.

        Minimises ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖W‖_* + (l2/2)‖W‖²_F``, the tasks' weight
        vectors sharing a low-dimensional subspace.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the trace norm.
            l2: Ridge weight ``≥ 0``.
    {common}

        References:
            Ji & Ye, "An accelerated gradient method for trace norm minimization", ICML 2009.
            Pong, Tseng, Ji & Ye, "Trace norm regularization: reformulations, algorithms, and multi-task
            learning", SIAM J. Optim. 2010.
    """


@document
class LogisticTrace(_TraceParams, LogisticMTL):
    r"""Multi-task logistic regression with a low-rank (trace-norm) coupling.

        Minimises ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α ‖W‖_* + (l2/2)‖W‖²_F``.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the trace norm.
            l2: Ridge weight ``≥ 0``.
    {common}

        References:
            Ji & Ye, "An accelerated gradient method for trace norm minimization", ICML 2009.
            Pong, Tseng, Ji & Ye, SIAM J. Optim. 2010.
    """

"""Per-task sparsity with the entrywise L1 norm (MALSAR's Least_Lasso and Logistic_Lasso)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import document
from multitask.linear._l21 import _L21Params
from multitask.linear._penalty import NormPenalty, Penalty
from multitask.linear._prox import soft_threshold

Array = Any


class L1Penalty(NormPenalty):
    """``α Σ_jt |W_jt| + (l2/2)‖W‖²_F``."""

    @staticmethod
    def norm(matrix: Array) -> float:
        return float(np.abs(matrix).sum())

    @staticmethod
    def dual_norm(matrix: Array) -> float:
        return float(np.abs(matrix).max(initial=0.0))

    @staticmethod
    def row_dual_norms(matrix: Array) -> Array:
        return np.asarray(np.abs(matrix).max(axis=1, initial=0.0))

    @staticmethod
    def prox_norm(matrix: Array, threshold: float) -> Array:
        return soft_threshold(matrix, threshold)


class _LassoParams(_L21Params):
    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return L1Penalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.l2)


@document
class LeastSquaresLasso(_LassoParams, LeastSquaresMTL):
    r"""Independent Lasso per task, solved jointly.

        Minimises ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖W‖_1 + (l2/2)‖W‖²_F``; in the shared-X form
        each column equals scikit-learn's ``Lasso(alpha)`` on that task.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the entrywise L1 norm.
            l2: Ridge weight ``≥ 0`` (an elastic net).
    {common}

        References:
            Tibshirani, "Regression shrinkage and selection via the lasso", JRSS B 1996; MALSAR's
            Least_Lasso (Zhou, Chen & Ye, "MALSAR: Multi-tAsk Learning via StructurAl Regularization", 2011).
    """


@document
class LogisticLasso(_LassoParams, LogisticMTL):
    r"""L1-regularised logistic regression per task, solved jointly.

        Minimises ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α ‖W‖_1 + (l2/2)‖W‖²_F``.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the entrywise L1 norm.
            l2: Ridge weight ``≥ 0``.
    {common}

        References:
            Tibshirani, "Regression shrinkage and selection via the lasso", JRSS B 1996; MALSAR's
            Logistic_Lasso (Zhou, Chen & Ye, 2011).
    """

"""Joint feature selection with the L2,1 norm (MALSAR's Least_L21 and Logistic_L21)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import NormPenalty, Penalty
from multitask.linear._prox import group_soft_threshold

Array = Any


class L21Penalty(NormPenalty):
    """``α Σ_j ‖W_j·‖_2 + (l2/2)‖W‖²_F``: the L2,1 norm sums the Euclidean norms of the rows (features)."""

    @staticmethod
    def norm(matrix: Array) -> float:
        return float(np.linalg.norm(matrix, axis=1).sum())

    @staticmethod
    def dual_norm(matrix: Array) -> float:
        return float(np.linalg.norm(matrix, axis=1).max(initial=0.0))

    @staticmethod
    def row_dual_norms(matrix: Array) -> Array:
        return np.asarray(np.linalg.norm(matrix, axis=1))

    @staticmethod
    def prox_norm(matrix: Array, threshold: float) -> Array:
        return group_soft_threshold(matrix, threshold, axis=1)


class _L21Params:
    alpha: float
    l2: float

    def __init__(
        self,
        alpha: float = 0.1,
        *,
        l2: float = 0.0,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _check_params(self) -> None:
        check_alpha_beta(alpha=self.alpha, l2=self.l2)

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return L21Penalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.l2)


@document
class LeastSquaresL21(_L21Params, LeastSquaresMTL):
    r"""Multi-task least squares with joint feature selection (L2,1 norm).

        Minimises ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖W‖_{2,1} + (l2/2) ‖W‖²_F`` with
        ``‖W‖_{2,1} = Σ_j ‖W_j·‖_2`` over the rows (features). In the shared-X form without missing targets
        this is exactly scikit-learn's ``MultiTaskLasso`` objective ``(1/(2n))‖Y − XW‖²_F + α‖W‖_{2,1}``.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the L2,1 norm.
            l2: Ridge weight ``≥ 0``.
    {common}

        Attributes:
            coef_: ``[T, d]`` (``[d]`` for a 1-D ``y``). intercept_: ``[T]``. n_iter_: FISTA steps.
            dual_gap_: Final duality gap (``nan`` when the relative-change rule was used).
            tasks_: Task labels. n_features_in_: ``d``.

        References:
            Argyriou, Evgeniou & Pontil, "Convex multi-task feature learning", Machine Learning 2008.
            Obozinski, Taskar & Jordan, "Joint covariate selection and joint subspace selection for
            multiple classification problems", Statistics and Computing 2010.
            Liu, Ji & Ye, "Multi-task feature learning via efficient l2,1-norm minimization", UAI 2009.
    """


@document
class LogisticL21(_L21Params, LogisticMTL):
    r"""Multi-task logistic regression with joint feature selection (L2,1 norm).

        Minimises ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α ‖W‖_{2,1} + (l2/2)‖W‖²_F``,
        ``s = ±1`` for ``classes_[1]`` / ``classes_[0]`` (binary tasks sharing one pair of labels).

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the L2,1 norm.
            l2: Ridge weight ``≥ 0``.
    {common}

        Attributes:
            coef_: ``[T, d]`` (``[d]`` for a 1-D ``y``). intercept_: ``[T]``. classes_: the two labels.
            n_iter_: FISTA steps. tasks_: Task labels.

        References:
            Obozinski, Taskar & Jordan, "Joint covariate selection and joint subspace selection for
            multiple classification problems", Statistics and Computing 2010.
            Argyriou, Evgeniou & Pontil, "Convex multi-task feature learning", Machine Learning 2008.
    """

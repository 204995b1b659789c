"""Robust multi-task learning: low-rank shared structure plus group-sparse outlier tasks (RMTL)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty
from multitask.linear._prox import group_soft_threshold, singular_value_threshold

Array = Any


class RobustPenalty(Penalty):
    """``W = L + S``: ``α ‖L‖_* + β Σ_t ‖S_·t‖_2`` (the L1,2 norm sums the columns' norms)."""

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta = alpha, beta

    def shapes(self) -> list[tuple[int, int]]:
        return [(self.n_features, self.n_tasks)] * 2

    def coef(self, blocks: list[Array]) -> Array:
        return blocks[0] + blocks[1]

    def coef_adjoint(self, grad: Array, out: list[Array]) -> None:
        out[0] += grad
        out[1] += grad

    def prox(self, blocks: list[Array], step: float) -> None:
        blocks[0][...] = singular_value_threshold(blocks[0], step * self.alpha)
        blocks[1][...] = group_soft_threshold(blocks[1], step * self.beta, axis=0)

    def value(self, blocks: list[Array]) -> float:
        low_rank = float(np.linalg.svd(blocks[0], compute_uv=False).sum())
        return self.alpha * low_rank + self.beta * float(np.linalg.norm(blocks[1], axis=0).sum())

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        return {"coef_low_rank_": blocks[0].T.copy(), "coef_outlier_": blocks[1].T.copy()}


class _RobustParams:
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.1,
        *,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _check_params(self) -> None:
        check_alpha_beta(alpha=self.alpha, beta=self.beta)

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return RobustPenalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.beta)


@document
class LeastSquaresRobust(_RobustParams, LeastSquaresMTL):
    r"""Robust multi-task least squares (RMTL): low-rank shared part plus outlier tasks.

        Minimises over ``W = L + S``: ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖L‖_* + β ‖S‖_{1,2}``,
        ``‖S‖_{1,2} = Σ_t ‖s_t‖_2``: tasks that do not fit the shared subspace get a non-zero column ``s_t``.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the trace norm on ``L``.
            beta: Strength ``β ≥ 0`` of the column-group norm on ``S``.
    {common}

        Attributes:
            coef_: ``(L + S)ᵀ``. coef_low_rank_: ``Lᵀ``. coef_outlier_: ``Sᵀ``. intercept_, n_iter_, tasks_.

        References:
            Chen, Zhou & Ye, "Integrating low-rank and group-sparse structures for robust multi-task
            learning", KDD 2011.
    """


@document
class LogisticRobust(_RobustParams, LogisticMTL):
    r"""Robust multi-task logistic regression (RMTL with the logistic loss).

        Minimises over ``W = L + S``: ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α ‖L‖_*
        + β ‖S‖_{1,2}``.

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the trace norm on ``L``.
            beta: Strength ``β ≥ 0`` of the column-group norm on ``S``.
    {common}

        References:
            Chen, Zhou & Ye, "Integrating low-rank and group-sparse structures for robust multi-task
            learning", KDD 2011.
    """

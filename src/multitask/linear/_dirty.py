"""The dirty model: block-sparse plus element-sparse weights (MALSAR's Least_Dirty)."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty
from multitask.linear._prox import group_soft_threshold, prox_linf, soft_threshold

Array = Any
_GROUP_NORMS = ("linf", "l2")


class DirtyPenalty(Penalty):
    """``W = P + Q``: ``α Σ_j ‖P_j·‖_q + β ‖Q‖_1``, ``q = ∞`` (``"linf"``) or ``2`` (``"l2"``) over rows."""

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float, group_norm: str) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta, self.group_norm = alpha, beta, group_norm

    def shapes(self) -> list[tuple[int, int]]:
        return [(self.n_features, self.n_tasks)] * 2

    def coef(self, blocks: list[Array]) -> Array:
        return blocks[0] + blocks[1]

    def coef_adjoint(self, grad: Array, out: list[Array]) -> None:
        out[0] += grad
        out[1] += grad

    def prox(self, blocks: list[Array], step: float) -> None:
        p, q = blocks
        if self.group_norm == "linf":
            p[...] = prox_linf(p, step * self.alpha)
        else:
            p[...] = group_soft_threshold(p, step * self.alpha, axis=1)
        q[...] = soft_threshold(q, step * self.beta)

    def value(self, blocks: list[Array]) -> float:
        p, q = blocks
        order = np.inf if self.group_norm == "linf" else 2
        return self.alpha * float(np.linalg.norm(p, ord=order, axis=1).sum()) + self.beta * float(np.abs(q).sum())

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        return {"coef_group_": blocks[0].T.copy(), "coef_sparse_": blocks[1].T.copy()}


class _DirtyParams:
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.1,
        *,
        group_norm: str = "linf",
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
        warm_start: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.group_norm = group_norm
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _check_params(self) -> None:
        check_alpha_beta(alpha=self.alpha, beta=self.beta)
        if self.group_norm not in _GROUP_NORMS:
            raise ValueError(f"group_norm must be one of {_GROUP_NORMS}; got {self.group_norm!r}")

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return DirtyPenalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.beta, self.group_norm)


@document
class LeastSquaresDirty(_DirtyParams, LeastSquaresMTL):
    r"""Dirty model for multi-task least squares: shared support plus task-specific exceptions.

        Minimises over ``W = P + Q``: ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α ‖P‖_{1,q} + β ‖Q‖_1``,
        with ``‖P‖_{1,∞} = Σ_j max_t |P_jt|`` (``group_norm="linf"``, the paper's choice) or
        ``‖P‖_{2,1} = Σ_j ‖P_j·‖_2`` (``group_norm="l2"``).

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the row-group norm on ``P``.
            beta: Strength ``β ≥ 0`` of the L1 norm on ``Q``.
            group_norm: ``"linf"`` or ``"l2"``.
    {common}

        Attributes:
            coef_: ``(P + Q)ᵀ``. coef_group_: ``Pᵀ``. coef_sparse_: ``Qᵀ``. intercept_, n_iter_, tasks_.

        References:
            Jalali, Ravikumar, Sanghavi & Ruan, "A dirty model for multi-task learning", NIPS 2010.
    """


@document
class LogisticDirty(_DirtyParams, LogisticMTL):
    r"""Dirty model for multi-task logistic regression.

        Minimises over ``W = P + Q``: ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t)))
        + α ‖P‖_{1,q} + β ‖Q‖_1`` (``q = ∞`` or ``2`` as ``group_norm``).

        {data}

        Args:
            alpha: Strength ``α ≥ 0`` of the row-group norm on ``P``.
            beta: Strength ``β ≥ 0`` of the L1 norm on ``Q``.
            group_norm: ``"linf"`` or ``"l2"``.
    {common}

        References:
            Jalali, Ravikumar, Sanghavi & Ruan, "A dirty model for multi-task learning", NIPS 2010.
    """

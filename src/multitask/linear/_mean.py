"""Mean-regularised (soft-sharing) multi-task learning: ``w_t = w_0 + v_t``."""

from __future__ import annotations

from typing import Any

import numpy as np

from multitask.linear._base import LeastSquaresMTL, LogisticMTL
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._penalty import Penalty

Array = Any


class MeanPenalty(Penalty):
    """Blocks ``w_0 [d, 1]`` and ``V [d, T]``, ``W = w_0 1ᵀ + V``: ``α Σ_t ‖v_t‖² + β ‖w_0‖²``."""

    def __init__(self, n_features: int, n_tasks: int, alpha: float, beta: float) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha, self.beta = alpha, beta

    def shapes(self) -> list[tuple[int, int]]:
        return [(self.n_features, 1), (self.n_features, self.n_tasks)]

    def coef(self, blocks: list[Array]) -> Array:
        return blocks[0] + blocks[1]

    def coef_adjoint(self, grad: Array, out: list[Array]) -> None:
        out[0] += grad.sum(axis=1, keepdims=True)
        out[1] += grad

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        shared, specific = blocks
        if out is not None:
            out[0] += 2.0 * self.beta * shared
            out[1] += 2.0 * self.alpha * specific
        return self.alpha * float(np.vdot(specific, specific)) + self.beta * float(np.vdot(shared, shared))

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        return {"coef_mean_": blocks[0][:, 0].copy()}


class _MeanParams:
    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.0,
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
        return MeanPenalty(n_features, n_tasks, self.alpha if alpha is None else alpha, self.beta)


@document
class LeastSquaresMeanRegularized(_MeanParams, LeastSquaresMTL):
    r"""Mean-regularised multi-task least squares (soft sharing around a common vector).

        Minimises over ``w_t = w_0 + v_t``: ``Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α Σ_t ‖v_t‖² + β ‖w_0‖²``.
        With ``β = 0`` the shared part is unpenalised and the penalty is ``α Σ_t ‖w_t − w̄‖²``; ``α → ∞``
        gives one pooled model, ``α → 0`` independent unregularised models.

        {data}

        Args:
            alpha: Weight ``α ≥ 0`` of the task-specific deviations.
            beta: Weight ``β ≥ 0`` of the shared vector.
    {common}

        Attributes:
            coef_: ``[T, d]``. coef_mean_: ``w_0 [d]``. intercept_, n_iter_, tasks_.

        References:
            Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004 (their ``λ₁/T``, ``λ₂`` are
            ``α``, ``β`` here, up to the loss normalisation).
    """


@document
class LogisticMeanRegularized(_MeanParams, LogisticMTL):
    r"""Mean-regularised multi-task logistic regression.

        Minimises over ``w_t = w_0 + v_t``: ``Σ_t (1/n_t) Σ_{i∈t} log(1 + exp(−s_it (x_iᵀ w_t + b_t)))
        + α Σ_t ‖v_t‖² + β ‖w_0‖²``.

        {data}

        Args:
            alpha: Weight ``α ≥ 0`` of the task-specific deviations.
            beta: Weight ``β ≥ 0`` of the shared vector.
    {common}

        References:
            Evgeniou & Pontil, "Regularized multi-task learning", KDD 2004.
    """

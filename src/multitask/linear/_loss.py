"""Data-fit terms: per-task mean squared error (Gram or direct) and per-task mean logistic loss."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import expit

from multitask.linear._data import TaskData

Array = NDArray[Any]
LossValue = tuple[float, "Array | None", "Array | None"]

_GRAM_BYTES = 1 << 30


class SquaredLoss:
    r"""``f(W) = Σ_t (1 / (2 n_t)) Σ_{i ∈ t} (y_it − b_t − x_iᵀ w_t)²`` with ``b`` eliminated exactly.

    With ``fit_intercept`` each task is centred by its own means ``x̄_t``, ``ȳ_t``, which gives the
    optimal ``b_t = ȳ_t − x̄_tᵀ w_t`` for any ``W``; centring is applied implicitly, so sparse ``X``
    stays sparse. When it is cheaper, the loss is evaluated from (per-task) Gram matrices
    ``G_t = (1/n_t) X̃_tᵀ X̃_t`` and ``B = [(1/n_t) X̃_tᵀ ỹ_t]_t``: ``f = ½ Σ_t w_tᵀ G_t w_t − ⟨W, B⟩ + ½ yy``.
    """

    is_quadratic = True
    has_intercept_variable = False

    def __init__(self, data: TaskData, fit_intercept: bool, use_gram: bool | None = None) -> None:
        self.data = data
        self.fit_intercept = fit_intercept
        d, n_tasks = data.X.shape[1], data.n_tasks
        dtype = data.X.dtype
        self.y_mean = data.task_sum(data.weights * data.targets) if fit_intercept else np.zeros(n_tasks, dtype=dtype)
        self.centred = (data.targets - data.expand(self.y_mean)) * data.observed
        weighted = data.weights * self.centred
        if not fit_intercept:
            self.x_mean = np.zeros((d, n_tasks), dtype=dtype)
            self.B = data.adjoint(weighted)
        elif data.task_of_row is None:  # one pass over X for both x̄ and B
            both = data.adjoint(np.hstack([data.weights, weighted]))
            self.x_mean, self.B = np.ascontiguousarray(both[:, :n_tasks]), np.ascontiguousarray(both[:, n_tasks:])
        else:
            self.x_mean, self.B = data.adjoint(data.weights), data.adjoint(weighted)
        self.yy = float(np.sum(data.weights * self.centred**2))
        self.use_gram = self._use_gram() if use_gram is None else use_gram
        self._gram_cache: Array | None = None

    @property
    def gram(self) -> Array | None:
        """The (per-task) Gram matrices when the loss is evaluated from them, built on first use."""
        if self.use_gram and self._gram_cache is None:
            self._gram_cache = self._gram()
        return self._gram_cache

    @property
    def is_gram_built(self) -> bool:
        return self._gram_cache is not None

    def _use_gram(self) -> bool:
        data = self.data
        n, d = data.X.shape
        n_tasks = data.n_tasks
        if data.is_complete_shared:
            # the Gram costs n·d², a step from X 4·n·d·T: worth it unless d ≫ T (tens of steps expected)
            return bool(n >= d and d <= 100 * n_tasks)
        n_obs = int(data.counts.sum())
        per_iter_ok = n_tasks * d * d <= n_obs * d and n_tasks * d * d * data.X.dtype.itemsize <= _GRAM_BYTES
        setup_ok = data.task_of_row is not None or d <= 200
        return per_iter_ok and setup_ok

    def _gram(self) -> Array:
        data = self.data
        X = data.X
        if data.is_complete_shared:
            xtx = X.T @ X
            xtx = xtx.toarray() if sp.issparse(xtx) else xtx
            mean = self.x_mean[:, 0]
            return np.asarray(xtx / data.X.shape[0] - np.outer(mean, mean), dtype=X.dtype)
        d = X.shape[1]
        gram = np.empty((data.n_tasks, d, d), dtype=X.dtype)
        for t in range(data.n_tasks):
            if data.bounds is not None:
                rows = X[data.bounds[t] : data.bounds[t + 1]]
                block = (rows.T @ rows) / data.counts[t]
            else:
                block = X.T @ (sp.diags(data.weights[:, t]) @ X if sp.issparse(X) else X * data.weights[:, t, None])
            block = block.toarray() if sp.issparse(block) else block
            gram[t] = block - np.outer(self.x_mean[:, t], self.x_mean[:, t])
        return gram

    def gram_product(self, coef: Array) -> Array:
        assert self.gram is not None
        if self.gram.ndim == 2:
            return np.asarray(self.gram @ coef)
        return np.asarray(np.matmul(self.gram, coef.T[:, :, None])[:, :, 0].T)

    def value_grad(self, coef: Array, intercept: Array | None, need_grad: bool) -> LossValue:
        if self.gram is not None:
            gw = self.gram_product(coef)
            value = 0.5 * float(np.vdot(coef, gw)) - float(np.vdot(coef, self.B)) + 0.5 * self.yy
            return max(value, 0.0), gw - self.B, None
        data = self.data
        offset = np.sum(self.x_mean * coef, axis=0)
        residual = data.forward(coef) - data.expand(offset) - self.centred
        weighted = data.weights * residual
        value = 0.5 * float(np.vdot(weighted, residual))
        return value, (data.adjoint(weighted) if need_grad else None), None

    def restrict(self, features: Array) -> SquaredLoss:
        """The loss seen by ``W[features]`` alone (shared, complete form), reusing the centring statistics."""
        sub = object.__new__(SquaredLoss)
        columns = self.data.X[:, features]
        sub.data = replace(self.data, X=columns if sp.issparse(columns) else np.ascontiguousarray(columns))
        sub.fit_intercept = self.fit_intercept
        sub.x_mean, sub.y_mean, sub.centred, sub.yy = self.x_mean[features], self.y_mean, self.centred, self.yy
        sub.B = self.B[features]
        sub.use_gram, sub._gram_cache = sub._use_gram(), None
        return sub

    def value_grad_rows(self, sub: SquaredLoss, coef_rows: Array) -> tuple[float, Array]:
        """Value and full gradient ``[d, T]`` at a ``W`` that is zero outside the rows ``sub`` keeps.

        Only the gradient needs all of ``X``; the residual comes from ``sub``'s columns.
        """
        data = self.data
        residual = np.asarray(sub.data.X @ coef_rows) - np.sum(sub.x_mean * coef_rows, axis=0) - self.centred
        weighted = data.weights * residual
        return 0.5 * float(np.vdot(weighted, residual)), data.adjoint(weighted)

    def intercept(self, coef: Array, intercept: Array | None) -> Array:
        return np.asarray(self.y_mean - np.sum(self.x_mean * coef, axis=0))

    def grad_at_zero(self) -> tuple[Array, Array | None]:
        """Gradient in ``W`` at ``W = 0`` (with the optimal intercept) and that intercept."""
        return -self.B, None


class LogisticLoss:
    r"""``f(W, b) = Σ_t (1 / n_t) Σ_{i ∈ t} log(1 + exp(−s_it (x_iᵀ w_t + b_t)))``, labels ``s ∈ {−1, +1}``."""

    is_quadratic = False

    def __init__(self, data: TaskData, fit_intercept: bool) -> None:
        self.data = data
        self.has_intercept_variable = fit_intercept

    def value_grad(self, coef: Array, intercept: Array | None, need_grad: bool) -> LossValue:
        data = self.data
        z = data.forward(coef)
        if intercept is not None:
            z = z + data.expand(intercept)
        margin = -data.targets * z
        value = float(np.sum(data.weights * np.logaddexp(0.0, margin)))
        if not need_grad:
            return value, None, None
        q = (-data.weights * data.targets * expit(margin)).astype(coef.dtype, copy=False)
        grad_b = data.task_sum(q) if intercept is not None else None
        return value, data.adjoint(q), grad_b

    def intercept(self, coef: Array, intercept: Array | None) -> Array:
        return np.zeros(coef.shape[1], dtype=coef.dtype) if intercept is None else intercept

    def grad_at_zero(self) -> tuple[Array, Array | None]:
        data = self.data
        d, dtype = data.X.shape[1], data.X.dtype
        b = None
        if self.has_intercept_variable:
            positive = np.clip(data.task_sum(data.weights * (data.targets > 0)), 1e-6, 1 - 1e-6)
            b = np.log(positive / (1.0 - positive)).astype(dtype)
        _, grad, _ = self.value_grad(np.zeros((d, data.n_tasks), dtype=dtype), b, True)
        assert grad is not None
        return grad, b

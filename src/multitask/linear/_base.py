"""Estimator bases: validation, the FISTA solve, prediction and scoring for every formulation."""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from multitask.linear._data import TaskData, check_x, prepare, task_indices
from multitask.linear._fista import FistaResult, fista
from multitask.linear._loss import LogisticLoss, SquaredLoss
from multitask.linear._penalty import NormPenalty, Penalty

Array = NDArray[Any]
Loss = SquaredLoss | LogisticLoss


def check_non_negative(**values: float) -> None:
    """Raises ``ValueError`` naming the first parameter that is negative or not finite."""
    for name, value in values.items():
        if not (isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")


class Solution:
    """Blocks, intercept variable and solver outcome of one solve (also a warm start for the next)."""

    def __init__(self, x: Array, penalty: Penalty, loss: Loss, result: FistaResult) -> None:
        self.x = x
        self.blocks, self.intercept_var = split(x, penalty, loss)
        self.coef = penalty.coef(self.blocks)
        self.intercept = loss.intercept(self.coef, self.intercept_var)
        self.result = result


def split(x: Array, penalty: Penalty, loss: Loss) -> tuple[list[Array], Array | None]:
    """Views of the flat variable ``x`` as the penalty's blocks (+ the intercept variable)."""
    blocks = []
    start = 0
    for shape in penalty.shapes():
        size = shape[0] * shape[1]
        blocks.append(x[start : start + size].reshape(shape))
        start += size
    return blocks, (x[start:] if loss.has_intercept_variable else None)


_WORKING_SET_MIN = 256  # below this many features a full Gram matrix is cheap enough


def duality_gap(loss: SquaredLoss, penalty: Penalty, coef: Array, value: float, grad: Array) -> float:
    """Duality gap of ``f(W) + α Ω(W)`` at ``W = coef`` with ``f(W) = value``, ``∇f(W) = grad``.

    The dual point is the residual scaled into the dual-feasible set, as in scikit-learn's
    ``MultiTaskLasso``.
    """
    ratio = penalty.dual_ratio(grad)
    assert ratio is not None
    scale = 1.0 if ratio <= 1.0 else 1.0 / ratio  # θ = scale · R is dual feasible
    r_dot_y = loss.yy - float(np.vdot(coef, loss.B))
    return value * (1.0 + scale * scale) + penalty.value([coef]) - scale * r_dot_y


def solve(
    loss: Loss,
    penalty: Penalty,
    *,
    max_iter: int,
    tol: float,
    start: Array | None = None,
    lipschitz: float | None = None,
) -> Solution:
    """Minimises ``loss + penalty`` from ``start`` (or zero).

    Least squares with a row-separable norm (L2,1, L1) is solved on a growing working set of
    features when it is evaluated from ``X`` (``d`` large against ``n`` or ``T``), or when its Gram
    matrix is not built yet and ``d > 256``: restricted Gram matrices (``n·|set|²``) then replace
    the full one (``n·d²``). Otherwise by :func:`~multitask.linear._fista.fista` on all variables
    (a path builds the full Gram once, up front).
    """
    if (
        isinstance(loss, SquaredLoss)
        and isinstance(penalty, NormPenalty)
        and (not loss.use_gram or (not loss.is_gram_built and penalty.n_features > _WORKING_SET_MIN))
        and loss.data.is_complete_shared
        and penalty.dual_ratio(loss.B) is not None
        and penalty.row_dual_norms(loss.B) is not None
    ):
        return _solve_working_set(loss, penalty, max_iter=max_iter, tol=tol, start=start, lipschitz=lipschitz)
    return _solve_all(loss, penalty, max_iter=max_iter, tol=tol, start=start, lipschitz=lipschitz)


def _solve_working_set(
    loss: SquaredLoss,
    penalty: NormPenalty,
    *,
    max_iter: int,
    tol: float,
    start: Array | None,
    lipschitz: float | None,
) -> Solution:
    """Working-set FISTA (as in Massias, Gramfort & Salmon, "Celer", ICML 2018, without its dual extrapolation).

    Solves the problem restricted to the features of a working set (all others fixed at zero), then
    checks the full problem: stops when its duality gap meets the tolerance, otherwise adds the
    features that violate optimality (``Ω*``-norm of their gradient row ``> α``), doubling the set,
    or tightens the restricted tolerance when none do. The answer is the full problem's, certified by
    its duality gap; the restricted solves only see a ``n × |working set|`` slice of ``X``.
    """
    data = loss.data
    d, n_tasks = penalty.n_features, penalty.n_tasks
    if start is None or start.shape != (d * n_tasks,):
        coef = np.zeros((d, n_tasks), dtype=data.X.dtype)
    else:
        coef = start.reshape(d, n_tasks).copy()
    threshold = tol * loss.yy
    sub_tol, n_iter, lip = 0.3 * tol, 0, lipschitz
    active = np.flatnonzero(np.any(coef != 0, axis=1))
    size = min(d, max(2 * active.size, _WORKING_SET_MIN // 2))
    features: Array | None = None
    if active.size:  # from X, through the active columns: the full Gram matrix is never built here
        value, grad = loss.value_grad_rows(loss.restrict(active), coef[active])
    else:
        value, grad = 0.5 * loss.yy, -loss.B
    while True:
        assert grad is not None
        criterion = duality_gap(loss, penalty, coef, value, grad)
        if criterion <= threshold or n_iter >= max_iter:
            result = FistaResult(
                coef.ravel(), max(n_iter, 1), criterion <= threshold, criterion, threshold, "duality gap", lip or 1.0
            )
            return Solution(coef.ravel(), penalty, loss, result)
        scores = penalty.row_dual_norms(grad)
        assert scores is not None
        violators = scores > penalty.alpha
        if features is not None:  # grow the set if the last restricted solution violates optimality outside it
            violators[features] = False
            if np.any(violators):
                size = min(d, 2 * max(size, active.size))
            else:
                sub_tol *= 0.1
        scores[active] = np.inf  # keep every feature already in the model
        if size >= d:
            rest = _solve_all(loss, penalty, max_iter=max_iter - n_iter, tol=tol, start=coef.ravel(), lipschitz=lip)
            rest.result.n_iter += n_iter
            return rest
        features = np.sort(np.argsort(-scores, kind="stable")[:size])
        sub_loss = loss.restrict(features)
        sub_penalty = type(penalty)(features.size, n_tasks, penalty.alpha, penalty.l2)
        sub = _solve_all(
            sub_loss, sub_penalty, max_iter=max_iter - n_iter, tol=sub_tol, start=coef[features].ravel(), lipschitz=lip
        )
        n_iter, lip = n_iter + sub.result.n_iter, sub.result.lipschitz
        coef = np.zeros_like(coef)
        coef[features] = sub.coef
        active = np.flatnonzero(np.any(coef != 0, axis=1))
        value, grad = loss.value_grad_rows(sub_loss, sub.coef)


def _solve_all(
    loss: Loss,
    penalty: Penalty,
    *,
    max_iter: int,
    tol: float,
    start: Array | None = None,
    lipschitz: float | None = None,
) -> Solution:
    """Minimises ``loss + penalty`` over all variables by :func:`~multitask.linear._fista.fista`."""
    dtype = loss.data.X.dtype
    size = sum(a * b for a, b in penalty.shapes()) + (loss.data.n_tasks if loss.has_intercept_variable else 0)
    if start is None or start.shape != (size,):
        start = np.zeros(size, dtype=dtype)
        penalty.initialise(split(start, penalty, loss)[0])

    def smooth(x: Array, need_grad: bool) -> tuple[float, Array | None]:
        blocks, b = split(x, penalty, loss)
        value, grad_w, grad_b = loss.value_grad(penalty.coef(blocks), b, need_grad)
        grad = None
        if need_grad:
            assert grad_w is not None
            grad = np.zeros_like(x)
            grad_blocks, grad_b_view = split(grad, penalty, loss)
            penalty.coef_adjoint(grad_w, grad_blocks)
            if grad_b_view is not None:
                grad_b_view[:] = grad_b
            value += penalty.smooth(blocks, grad_blocks)
        else:
            value += penalty.smooth(blocks, None)
        return value, grad

    def prox(v: Array, step: float) -> Array:
        out = v.copy()
        penalty.prox(split(out, penalty, loss)[0], step)
        return np.asarray(out)

    def gap(x: Array, value: float, grad: Array) -> float:
        assert isinstance(loss, SquaredLoss)
        return duality_gap(loss, penalty, split(x, penalty, loss)[0][0], value, split(grad, penalty, loss)[0][0])

    has_gap = isinstance(loss, SquaredLoss) and penalty.dual_ratio(loss.B) is not None
    result = fista(
        smooth,
        prox,
        start,
        max_iter=max_iter,
        tol=tol,
        is_quadratic=loss.is_quadratic and penalty.is_quadratic,
        gap=gap if has_gap else None,
        gap_scale=loss.yy if isinstance(loss, SquaredLoss) else 1.0,
        lipschitz=lipschitz,
    )
    return Solution(result.x, penalty, loss, result)


def make_loss(data: TaskData, is_classifier: bool, fit_intercept: bool) -> Loss:
    return LogisticLoss(data, fit_intercept) if is_classifier else SquaredLoss(data, fit_intercept)


class LinearMTL(BaseEstimator):  # type: ignore[misc]
    """Shared machinery; a concrete estimator adds its parameters and :meth:`_make_penalty`."""

    _is_classifier: ClassVar[bool] = False
    fit_intercept: bool
    max_iter: int
    tol: float
    warm_start: bool

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        raise NotImplementedError

    def _check_params(self) -> None:
        raise NotImplementedError

    def fit(self, X: Any, y: Any, task: Any = None) -> LinearMTL:
        """Fits the model.

        Args:
            X: Features ``[n_samples, n_features]``, dense or sparse.
            y: Shared-X form: targets ``[n_samples]`` or ``[n_samples, n_tasks]``, ``NaN`` = missing.
                Per-task form (with ``task``): targets ``[n_samples]``.
            task: Per-task form: the task label of each row ``[n_samples]``.

        Returns:
            The fitted estimator.
        """
        self._check_params()
        check_non_negative(tol=self.tol)
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        prepared = prepare(self, X, y, task, is_classifier=self._is_classifier)
        data = prepared.data
        loss = make_loss(data, self._is_classifier, self.fit_intercept)
        penalty = self._make_penalty(data.X.shape[1], data.n_tasks)
        start = getattr(self, "_solution_x_", None) if self.warm_start else None
        solution = solve(loss, penalty, max_iter=self.max_iter, tol=self.tol, start=start)
        self._set_fitted(solution, penalty, prepared.is_single_output, prepared.tasks, prepared.classes)
        return self

    def _set_fitted(
        self, solution: Solution, penalty: Penalty, is_single: bool, tasks: Array, classes: Array | None
    ) -> None:
        result = solution.result
        if not result.converged:
            warnings.warn(
                f"{type(self).__name__} did not converge in {result.n_iter} iterations: {result.rule} "
                f"{result.criterion:.3e} > tolerance {result.threshold:.3e}. Increase max_iter, "
                "loosen tol, or scale the features.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._solution_x_ = solution.x
        self._is_single_output_ = is_single
        coef = solution.coef.T.copy()
        intercept = np.asarray(solution.intercept).copy()
        self.coef_ = coef[0] if is_single else coef
        self.intercept_ = intercept[0] if is_single else intercept
        self.n_iter_ = result.n_iter
        self.dual_gap_ = result.criterion if result.rule == "duality gap" else math.nan
        self.tasks_ = tasks
        if classes is not None:
            self.classes_ = classes
        for name, value in penalty.attributes(solution.blocks).items():
            setattr(self, name, value)

    def _decision(self, X: Any, task: Any = None) -> Array:
        """Linear scores ``x_iᵀ w_t + b_t``: ``[n, T]`` (``[n]`` for one task, or when ``task`` is given)."""
        check_is_fitted(self, "coef_")
        X = check_x(self, X)
        coef = np.atleast_2d(self.coef_)
        intercept = np.atleast_1d(self.intercept_)
        if task is None:
            scores = np.asarray(X @ coef.T) + intercept
            return np.asarray(scores[:, 0] if self._is_single_output_ else scores)
        index = task_indices(self.tasks_, task, X.shape[0])
        rows = coef[index]
        dots = np.asarray(X.multiply(rows).sum(axis=1)).ravel() if sp.issparse(X) else np.einsum("ij,ij->i", X, rows)
        return np.asarray(dots + intercept[index])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


def _grouped(y: Array, pred: Array, task: Any, metric: Any) -> float:
    """Mean over tasks (columns, or ``task`` groups) of ``metric`` on the observed entries."""
    y = np.asarray(y)
    if task is not None:
        labels = np.asarray(task)
        return float(np.mean([metric(y[labels == t], pred[labels == t]) for t in np.unique(labels)]))
    y2, p2 = y.reshape(y.shape[0], -1), pred.reshape(pred.shape[0], -1)
    scores = []
    for t in range(y2.shape[1]):
        keep = ~np.isnan(y2[:, t]) if y2.dtype.kind == "f" else np.ones(y2.shape[0], dtype=bool)
        scores.append(metric(y2[keep, t], p2[keep, t]))
    return float(np.mean(scores))


class LeastSquaresMTL(RegressorMixin, LinearMTL):  # type: ignore[misc]
    """Regression base: per-task mean squared error loss."""

    def predict(self, X: Any, task: Any = None) -> Array:
        """Predictions ``[n, T]`` (``[n]`` for one task or with ``task``, the per-row task labels)."""
        return self._decision(X, task)

    def score(self, X: Any, y: Any, sample_weight: Any = None, task: Any = None) -> float:
        """Mean over tasks of R² on observed targets (``sample_weight`` only without missing targets)."""
        pred = self.predict(X, task)
        if sample_weight is not None:
            return float(r2_score(y, pred, sample_weight=sample_weight))
        return _grouped(np.asarray(y, dtype=float), pred, task, r2_score)


class LogisticMTL(ClassifierMixin, LinearMTL):  # type: ignore[misc]
    """Binary classification base: per-task mean logistic loss; all tasks share ``classes_``."""

    _is_classifier = True

    def decision_function(self, X: Any, task: Any = None) -> Array:
        """Scores ``x_iᵀ w_t + b_t`` (``> 0`` means ``classes_[1]``).

        Returns ``[n, T]``, or ``[n]`` for one task or when ``task`` gives each row's task.
        """
        return self._decision(X, task)

    def predict(self, X: Any, task: Any = None) -> Array:
        """Labels from ``classes_``: ``[n, T]`` (``[n]`` for one task or with ``task``)."""
        positive = self._decision(X, task) > 0
        return np.asarray(self.classes_[positive.astype(int)])

    def predict_proba(self, X: Any, task: Any = None) -> Array:
        """``[n, 2]`` class probabilities for one task or with ``task``; else ``[n, T]`` of ``P(classes_[1])``.

        The multi-task shape follows scikit-learn's multilabel convention (one column per output).
        """
        p = expit(self._decision(X, task))
        return np.column_stack([1.0 - p, p]) if p.ndim == 1 else p

    def score(self, X: Any, y: Any, sample_weight: Any = None, task: Any = None) -> float:
        """Mean over tasks of the accuracy on observed labels."""
        pred = self.predict(X, task)
        if sample_weight is not None:
            return float(np.average(np.asarray(y) == pred, weights=sample_weight))
        return _grouped(np.asarray(y), pred, task, lambda a, b: float(np.mean(a == b)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

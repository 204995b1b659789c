"""Cross-validated regularisation paths for the single-``α`` estimators (as ``MultiTaskLassoCV``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import check_cv

from multitask.linear._base import LeastSquaresMTL, LinearMTL, LogisticMTL, Loss, Solution, make_loss, solve
from multitask.linear._common import check_alpha_beta, document
from multitask.linear._data import TaskData, prepare
from multitask.linear._l21 import L21Penalty, LeastSquaresL21
from multitask.linear._lasso import L1Penalty
from multitask.linear._loss import SquaredLoss
from multitask.linear._penalty import NormPenalty, Penalty
from multitask.linear._trace import TracePenalty

Array = NDArray[Any]


def validation_loss(data: TaskData, coef: Array, intercept: Array, is_classifier: bool) -> float:
    """Mean over the tasks present in ``data`` of each task's mean squared error or logistic loss."""
    z = data.forward(coef) + data.expand(intercept)
    entry = np.logaddexp(0.0, -data.targets * z) if is_classifier else (z - data.targets) ** 2
    present = int(np.count_nonzero(data.counts))
    return float(np.sum(data.weights * entry)) / max(present, 1)


def solve_path(
    loss: Loss, make_penalty: Callable[[float], Penalty], grid: Array, *, max_iter: int, tol: float
) -> Iterator[Solution]:
    """Solves for each ``α`` of ``grid`` in turn, each solve warm-started from the previous one.

    The loss (and with it the Gram matrix and centring statistics) is built once for the whole
    path, and the step-size constant ``L`` is carried from one solve to the next.
    """
    if isinstance(loss, SquaredLoss):
        _ = loss.gram  # built once for the whole path (and so used by every solve on it)
    start: Array | None = None
    lipschitz: float | None = None
    for alpha in grid:
        sol = solve(loss, make_penalty(float(alpha)), max_iter=max_iter, tol=tol, start=start, lipschitz=lipschitz)
        start, lipschitz = sol.x, sol.result.lipschitz
        yield sol


def l21_path(X: Any, Y: Any, alphas: Any, *, tol: float = 1e-4, max_iter: int = 1000) -> tuple[Array, Array]:
    """``LeastSquaresL21`` solutions along ``alphas`` (shared-X form), as ``MultiTaskLassoCV`` walks each fold.

    Returns:
        ``coefs [n_alphas, T, d]`` and ``intercepts [n_alphas, T]``.
    """
    est = LeastSquaresL21(tol=tol, max_iter=max_iter)
    data = prepare(est, X, Y, None, is_classifier=False).data
    d, n_tasks = data.X.shape[1], data.n_tasks
    path = list(
        solve_path(
            make_loss(data, False, True),
            lambda a: L21Penalty(d, n_tasks, a),
            np.asarray(alphas, dtype=float),
            max_iter=max_iter,
            tol=tol,
        )
    )
    return np.array([sol.coef.T for sol in path]), np.array([sol.intercept for sol in path])


class PathCV(LinearMTL):
    """Picks ``α`` on a warm-started, decreasing path by K-fold cross-validation, then refits."""

    _penalty_class: ClassVar[type[NormPenalty]]
    alphas: int | Any
    eps: float
    cv: Any
    l2: float

    def _check_params(self) -> None:
        check_alpha_beta(eps=self.eps, l2=self.l2)
        if isinstance(self.alphas, (int, np.integer)):
            if self.alphas < 1:
                raise ValueError(f"alphas must be >= 1 when an integer; got {self.alphas}")
        else:
            grid = np.asarray(self.alphas, dtype=float)
            if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid < 0):
                raise ValueError("alphas must be an int or a non-empty 1-D sequence of finite values >= 0")

    def _make_penalty(self, n_features: int, n_tasks: int, alpha: float | None = None) -> Penalty:
        return self._penalty_class(n_features, n_tasks, self.alpha_ if alpha is None else alpha, self.l2)

    def _grid(self, data: TaskData) -> Array:
        if not isinstance(self.alphas, (int, np.integer)):
            return np.sort(np.asarray(self.alphas, dtype=float))[::-1]
        grad, _ = make_loss(data, self._is_classifier, self.fit_intercept).grad_at_zero()
        alpha_max = max(self._penalty_class.dual_norm(grad), np.finfo(float).tiny)
        return (
            np.geomspace(alpha_max, alpha_max * self.eps, int(self.alphas))
            if self.alphas > 1
            else np.array([alpha_max])
        )

    def _path(self, train: TaskData, test: TaskData, grid: Array) -> Array:
        loss = make_loss(train, self._is_classifier, self.fit_intercept)
        d, n_tasks = train.X.shape[1], train.n_tasks
        path = solve_path(loss, lambda a: self._make_penalty(d, n_tasks, a), grid, max_iter=self.max_iter, tol=self.tol)
        return np.array([validation_loss(test, sol.coef, sol.intercept, self._is_classifier) for sol in path])

    def fit(self, X: Any, y: Any, task: Any = None) -> PathCV:
        """Fits the path on each fold, picks ``alpha_`` with the lowest mean validation loss, refits.

        Args:
            X: Features ``[n_samples, n_features]``.
            y: Targets, in the shared-X form or, with ``task``, the per-task form.
            task: Per-task form: the task label of each row.

        Returns:
            The fitted estimator.
        """
        self._check_params()
        prepared = prepare(self, X, y, task, is_classifier=self._is_classifier)
        data = prepared.data
        grid = self._grid(data)
        groups = data.task_of_row
        splitter = check_cv(self.cv, y=groups, classifier=groups is not None)
        split_on = groups if groups is not None else np.zeros(data.X.shape[0])
        folds = list(splitter.split(np.zeros((data.X.shape[0], 1)), split_on))
        path = np.column_stack(
            [self._path(data.subset(tr), data.subset(te, allow_empty=True), grid) for tr, te in folds]
        )
        self.alphas_ = grid
        self.loss_path_ = path
        self.alpha_ = float(grid[int(np.argmin(path.mean(axis=1)))])
        loss = make_loss(data, self._is_classifier, self.fit_intercept)
        penalty = self._make_penalty(data.X.shape[1], data.n_tasks)
        solution: Solution = solve(loss, penalty, max_iter=self.max_iter, tol=self.tol)
        self._set_fitted(solution, penalty, prepared.is_single_output, prepared.tasks, prepared.classes)
        return self


class _CVParams:
    def __init__(
        self,
        alphas: int | Any = 50,
        *,
        eps: float = 1e-3,
        cv: Any = 5,
        l2: float = 0.0,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-4,
    ) -> None:
        self.alphas = alphas
        self.eps = eps
        self.cv = cv
        self.l2 = l2
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol


_CV_DOC = """{kind} with ``α`` chosen by K-fold cross-validation on a warm-started path.

    Objective, as :class:`{base}`: ``{objective}``.

    Solves it for each ``α`` of a decreasing grid (``alphas`` values, geometric from ``α_max``, the
    smallest ``α`` giving ``W = 0``, down to ``eps · α_max``), each solve warm-started from the previous
    one, on every fold; picks the ``α`` with the lowest mean validation loss (mean over tasks of the
    mean squared error, or of the logistic loss) and refits on all data.

    {{data}}

    Args:
        alphas: Number of grid values, or the grid itself.
        eps: ``α_min / α_max``.
        cv: Folds (int), a splitter or an iterable of splits; in the per-task form an int stratifies
            the folds by task.
        l2: Ridge weight ``≥ 0``.
{{common}}

    Attributes:
        alpha_: The chosen ``α``. alphas_: The grid. loss_path_: Validation loss ``[n_alphas, n_folds]``.
        coef_, intercept_, n_iter_, tasks_ as in :class:`{base}`.

    References:
        {references}
    """

_LS = "Σ_t (1/(2 n_t)) ‖y_t − X_t w_t − b_t‖² + α {norm} + (l2/2)‖W‖²_F"
_LOG = "Σ_t (1/n_t) Σ_{{i∈t}} log(1 + exp(−s_it (x_iᵀ w_t + b_t))) + α {norm} + (l2/2)‖W‖²_F"
_REF_L21 = "Argyriou, Evgeniou & Pontil, Machine Learning 2008; Obozinski, Taskar & Jordan, Stat. Comput. 2010."
_REF_L1 = "Tibshirani, JRSS B 1996; Friedman, Hastie & Tibshirani, J. Stat. Softw. 2010 (warm-started paths)."
_REF_TRACE = "Ji & Ye, ICML 2009; Pong, Tseng, Ji & Ye, SIAM J. Optim. 2010."

C = TypeVar("C")


def _cv_doc(base: str, kind: str, objective: str, references: str) -> Callable[[C], C]:
    def decorate(cls: C) -> C:
        cls.__doc__ = _CV_DOC.format(kind=kind, base=base, objective=objective, references=references)
        return document(cls)

    return decorate


@_cv_doc("LeastSquaresL21", "L2,1 least squares", _LS.format(norm="‖W‖_{2,1}"), _REF_L21)
class LeastSquaresL21CV(_CVParams, LeastSquaresMTL, PathCV):
    _penalty_class = L21Penalty


@_cv_doc("LogisticL21", "L2,1 logistic regression", _LOG.format(norm="‖W‖_{2,1}"), _REF_L21)
class LogisticL21CV(_CVParams, LogisticMTL, PathCV):
    _penalty_class = L21Penalty


@_cv_doc("LeastSquaresLasso", "Lasso least squares", _LS.format(norm="‖W‖_1"), _REF_L1)
class LeastSquaresLassoCV(_CVParams, LeastSquaresMTL, PathCV):
    _penalty_class = L1Penalty


@_cv_doc("LogisticLasso", "L1 logistic regression", _LOG.format(norm="‖W‖_1"), _REF_L1)
class LogisticLassoCV(_CVParams, LogisticMTL, PathCV):
    _penalty_class = L1Penalty


@_cv_doc("LeastSquaresTrace", "Trace-norm least squares", _LS.format(norm="‖W‖_*"), _REF_TRACE)
class LeastSquaresTraceCV(_CVParams, LeastSquaresMTL, PathCV):
    _penalty_class = TracePenalty


@_cv_doc("LogisticTrace", "Trace-norm logistic regression", _LOG.format(norm="‖W‖_*"), _REF_TRACE)
class LogisticTraceCV(_CVParams, LogisticMTL, PathCV):
    _penalty_class = TracePenalty

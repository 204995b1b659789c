"""Multi-task data in the two accepted forms, validated once at the boundary.

* Shared-X form, ``fit(X, Y)``: ``X [n, d]`` is common to all tasks and ``Y [n, T]`` holds one
  column per task (a 1-D ``y`` is one task). ``NaN`` in ``Y`` marks a missing target.
* Per-task form (MALSAR's), ``fit(X, y, task=task)``: row ``i`` of ``X [N, d]`` and ``y [N]``
  belongs to task ``task[i]`` (any sortable labels); tasks have their own samples.

Both become a :class:`TaskData` whose per-entry weights ``1 / n_t`` make every task's loss a mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import validate_data

from multitask.errors import DataError, ShapeError

Array = NDArray[Any]


@dataclass
class TaskData:
    """Validated multi-task data; ``targets``/``weights`` are ``[n, T]`` (shared) or ``[N]`` (per task).

    Attributes:
        X: Design matrix, dense or CSR, float32 or float64 (rows sorted by task in the per-task form).
        targets: Targets with missing entries set to 0 (±1 for classification).
        weights: ``1 / n_t`` where observed, 0 where missing.
        observed: Boolean mask of observed entries.
        task_of_row: Per-task form: task index of each row; ``None`` in the shared form.
        bounds: Per-task form: row offsets ``[T + 1]`` of each task's block.
        counts: Number of observed samples per task ``[T]``.
    """

    X: Any
    targets: Array
    weights: Array
    observed: Array
    task_of_row: Array | None
    bounds: Array | None
    counts: Array

    @property
    def n_tasks(self) -> int:
        return int(self.counts.shape[0])

    @property
    def is_complete_shared(self) -> bool:
        """Shared form with every target observed."""
        return self.task_of_row is None and bool(self.observed.all())

    def forward(self, coef: Array) -> Array:
        """Linear predictions ``x_iᵀ w_t`` for every entry, given ``coef = W [d, T]``."""
        if self.bounds is None:
            return np.asarray(self.X @ coef)
        out = np.empty(self.X.shape[0], dtype=coef.dtype)
        for t in range(self.n_tasks):
            lo, hi = self.bounds[t], self.bounds[t + 1]
            out[lo:hi] = self.X[lo:hi] @ coef[:, t]
        return out

    def adjoint(self, values: Array) -> Array:
        """Adjoint of :meth:`forward`: ``Σ_i values_it x_i`` for each task, as ``[d, T]``."""
        if self.bounds is None:
            return np.asarray(self.X.T @ values)
        out = np.empty((self.X.shape[1], self.n_tasks), dtype=values.dtype)
        for t in range(self.n_tasks):
            lo, hi = self.bounds[t], self.bounds[t + 1]
            out[:, t] = self.X[lo:hi].T @ values[lo:hi]
        return out

    def task_sum(self, values: Array) -> Array:
        """Sum of ``values`` over each task's entries, ``[T]``."""
        if self.task_of_row is None:
            return np.asarray(values.sum(axis=0))
        return np.bincount(self.task_of_row, weights=values, minlength=self.n_tasks).astype(values.dtype)

    def expand(self, per_task: Array) -> Array:
        """Broadcasts a per-task vector ``[T]`` to the entries."""
        return per_task[None, :] if self.task_of_row is None else per_task[self.task_of_row]

    def subset(self, rows: Array, allow_empty: bool = False) -> TaskData:
        """The data restricted to ``rows`` (indices into this data's row order)."""
        rows = np.sort(np.asarray(rows))
        task = None if self.task_of_row is None else self.task_of_row[rows]
        raw = np.where(self.observed[rows], self.targets[rows], np.nan)
        return build(self.X[rows], raw, self.observed[rows], task, self.n_tasks, allow_empty)


def build(
    X: Any, targets: Array, observed: Array, task_of_row: Array | None, n_tasks: int, allow_empty: bool = False
) -> TaskData:
    """Assembles :class:`TaskData`, checking that every task has an observed sample (unless ``allow_empty``)."""
    if task_of_row is None:
        counts = observed.sum(axis=0)
        bounds = None
    else:
        counts = np.bincount(task_of_row, minlength=n_tasks)
        bounds = np.concatenate([[0], np.cumsum(counts)])
    empty = np.flatnonzero(counts == 0)
    if empty.size and not allow_empty:
        raise DataError(
            f"task(s) {empty.tolist()} have no observed sample (all targets NaN or no rows); "
            "drop those tasks or give them data"
        )
    safe = np.maximum(counts, 1)
    weights = observed / (safe[None, :] if task_of_row is None else safe[task_of_row])
    clean = np.where(observed, targets, 0.0).astype(X.dtype, copy=False)
    return TaskData(X, clean, weights.astype(X.dtype), observed, task_of_row, bounds, counts)


@dataclass
class Prepared:
    """Validated data plus what the estimator must remember about the targets."""

    data: TaskData
    is_single_output: bool
    tasks: Array
    classes: Array | None


def _check_x(estimator: Any, X: Any, reset: bool) -> Any:
    return validate_data(estimator, X, accept_sparse="csr", dtype=[np.float64, np.float32], reset=reset, order="C")


def check_x(estimator: Any, X: Any) -> Any:
    """Validates ``X`` at prediction time against the fitted number of features."""
    return _check_x(estimator, X, reset=False)


def _binary_targets(y: Array, observed: Array) -> tuple[Array, Array]:
    classes = np.unique(y[observed])
    if classes.size < 2:
        raise ValueError(f"Classifier needs samples of 2 classes; the data has only one class ({classes.tolist()})")
    if classes.size > 2:
        raise ValueError(
            f"Only binary classification is supported; got {classes.size} classes. Split a multiclass "
            "problem into one-vs-rest tasks."
        )
    signs = np.where(y == classes[1], 1.0, -1.0)
    return signs, classes


def prepare(estimator: Any, X: Any, y: Any, task: Any, *, is_classifier: bool) -> Prepared:
    """Validates ``(X, y, task)`` in either accepted form; see the module docstring."""
    if y is None:
        raise ValueError(f"{type(estimator).__name__} requires y to be passed, but the target y is None.")
    X = _check_x(estimator, X, reset=True)
    n = X.shape[0]
    if task is not None:
        return _prepare_per_task(X, y, task, is_classifier=is_classifier)
    if is_classifier:
        y_arr = np.asarray(y)
        if y_arr.ndim == 1:
            check_classification_targets(y_arr)
            kind = type_of_target(y_arr, input_name="y")
            if kind != "binary" and np.unique(y_arr).size > 2:
                raise ValueError(f"Only binary classification is supported. The type of the target is {kind}.")
        y_arr = check_array(y_arr, ensure_2d=False, dtype=None, ensure_all_finite="allow-nan", input_name="y")
    else:
        y_arr = check_array(y, ensure_2d=False, dtype=X.dtype, ensure_all_finite="allow-nan", input_name="y")
    if y_arr.ndim not in (1, 2) or y_arr.shape[0] != n:
        raise ShapeError(f"y must be [n_samples] or [n_samples, n_tasks] with n_samples={n}; got {y_arr.shape}")
    is_single = y_arr.ndim == 1
    y2 = y_arr.reshape(n, -1)
    observed = ~np.isnan(y2) if y2.dtype.kind == "f" else np.ones(y2.shape, dtype=bool)
    classes = None
    if is_classifier:
        y2, classes = _binary_targets(y2, observed)
    data = build(X, y2, observed, None, y2.shape[1])
    return Prepared(data, is_single, np.arange(y2.shape[1]), classes)


def _prepare_per_task(X: Any, y: Any, task: Any, *, is_classifier: bool) -> Prepared:
    n = X.shape[0]
    y_arr = check_array(y, ensure_2d=False, dtype=None if is_classifier else X.dtype, input_name="y")
    task_arr = np.asarray(task)
    if y_arr.ndim != 1 or y_arr.shape[0] != n or task_arr.shape != (n,):
        raise ShapeError(
            f"in the per-task form y and task must both be [n_samples] with n_samples={n}; "
            f"got y {y_arr.shape}, task {task_arr.shape}"
        )
    tasks, task_index = np.unique(task_arr, return_inverse=True)
    order = np.argsort(task_index, kind="stable")
    X, y_arr, task_index = X[order], y_arr[order], task_index[order]
    observed = np.ones(n, dtype=bool)
    classes = None
    if is_classifier:
        check_classification_targets(y_arr)
        y_arr, classes = _binary_targets(y_arr, observed)
    data = build(X, y_arr, observed, task_index, tasks.size)
    return Prepared(data, False, tasks, classes)


def task_indices(tasks: Array, task: Any, n_samples: int) -> Array:
    """Maps task labels given at prediction time to indices into the fitted ``tasks``."""
    labels = np.asarray(task)
    if labels.shape != (n_samples,):
        raise ShapeError(f"task must be [n_samples] = [{n_samples}]; got {labels.shape}")
    index = np.clip(np.searchsorted(tasks, labels), 0, tasks.size - 1)
    unknown = tasks[index] != labels
    if np.any(unknown):
        raise DataError(f"unknown task label(s) {np.unique(labels[unknown])[:5].tolist()}; fitted tasks: {tasks[:10]}")
    return index


def is_sparse(X: Any) -> bool:
    return bool(sp.issparse(X))

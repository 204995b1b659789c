"""The ``linear`` method: a `multitask.linear` estimator fitted on tasks and datasets, evaluated and saved with
its explanations (selected features, task clusters) as ``linear.json`` and ``linear.png``.

This module checks the arguments and fits; the fitted model is a `LinearRun` (``_linear_run``, which saves
and reads it), and ``_linear_data`` turns the table into NumPy features and labels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import multitask.linear as lin
from multitask.analysis._explain import selected_features, task_clusters
from multitask.analysis._linear_data import TableLike, feature_column, label_matrix, single_table
from multitask.analysis._linear_run import LinearRun as LinearRun  # re-exported: the report reads it from here
from multitask.errors import ConfigError, DataError, ShapeError, UnknownNameError
from multitask.tasks import Task

LINEAR_ESTIMATORS: dict[str, tuple[type[Any], type[Any]]] = {
    "lasso": (lin.LeastSquaresLasso, lin.LogisticLasso),
    "l21": (lin.LeastSquaresL21, lin.LogisticL21),
    "trace": (lin.LeastSquaresTrace, lin.LogisticTrace),
    "clustered": (lin.LeastSquaresClustered, lin.LogisticClustered),
    "dirty": (lin.LeastSquaresDirty, lin.LogisticDirty),
    "mean": (lin.LeastSquaresMeanRegularized, lin.LogisticMeanRegularized),
    "graph": (lin.LeastSquaresGraph, lin.LogisticGraph),
    "robust": (lin.LeastSquaresRobust, lin.LogisticRobust),
    "lasso_cv": (lin.LeastSquaresLassoCV, lin.LogisticLassoCV),
    "l21_cv": (lin.LeastSquaresL21CV, lin.LogisticL21CV),
    "trace_cv": (lin.LeastSquaresTraceCV, lin.LogisticTraceCV),
}
"""Penalty name -> (estimator for regression tasks, estimator for binary tasks)."""
LINEAR_PENALTIES: tuple[str, ...] = tuple(LINEAR_ESTIMATORS)
"""The penalty names `fit_linear` accepts (the keys of `LINEAR_ESTIMATORS`)."""
_KINDS = ("regression", "binary")
_FITTED = ("n_iter_", "dual_gap_", "alpha_")  # scalar fitted attributes worth keeping (when finite)


def fit_linear(
    penalty: str,
    tasks: Sequence[Task],
    train: TableLike,
    test: TableLike | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    feature_names: Sequence[str] | None = None,
    num_clusters: int | None = None,
    input_key: str = "x",
    run_dir: str | Path | None = None,
) -> LinearRun:
    r"""Fit one regularised linear model for all tasks on ``train``, evaluate it on ``test``, explain it.

    With ``X [n, d]`` the column ``input_key`` and ``Y [n, T]`` the tasks' labels (``NaN`` where a
    task's label is missing, as the `Task` marks it), the estimator minimises
    ``Σ_t (1/n_t) Σ_{i∈t} ℓ(x_iᵀ w_t + b_t, y_it) + Ω(W)`` with the squared error (``(1/2)(z − y)²``,
    regression tasks) or the logistic loss (binary tasks) and the penalty ``Ω`` named by ``penalty``:
    ``l21`` ``α Σ_j ‖W_j·‖₂`` (joint feature selection; Argyriou, Evgeniou & Pontil, Machine Learning
    2008), ``lasso`` ``α ‖W‖₁``, ``trace`` ``α ‖W‖_*`` (shared low-rank subspace), ``clustered``
    (cCMTL; Zhou, Chen & Ye, NIPS 2011), ``dirty`` (``P + Q`` with group and elementwise sparsity),
    ``mean`` (tasks pulled to their mean), ``graph`` (``α ‖W R‖²_F``, SRMTL), ``robust`` (low rank plus
    outlier tasks), and ``*_cv`` (``α`` chosen by cross-validation); see `multitask.linear` and
    MALSAR (Zhou, Chen & Ye 2011). Test metrics use each `Task`'s metric functions on the
    predictions ``x Wᵀ + b`` (logits for binary tasks), exactly as for the deep models.

    Args:
        penalty: One of `LINEAR_PENALTIES`.
        tasks: The tasks: all ``"regression"`` or all ``"binary"`` (one loss for every task).
        train: One dataset whose rows carry the features and every task's labels.
        test: Data to evaluate on (same columns), or None.
        params: Constructor arguments of the estimator (e.g. ``{"alpha": 0.1}``).
        feature_names: Names of the ``d`` features (default ``x0``, ``x1``, ...).
        num_clusters: Group the tasks into this many clusters (`task_clusters`); clustered
            estimators are always clustered, by default into their ``n_clusters``.
        input_key: The column holding the features ``[n, d]``.
        run_dir: Where to write ``linear.json`` and ``linear.png`` (nothing written when None).

    Returns:
        The fitted `LinearRun`.

    Raises:
        ConfigError: Unknown penalty or parameter, an invalid parameter value, a task that is not
            binary or regression, tasks of both kinds, or a bad ``num_clusters``; all before fitting.
        DataError: Data without the input or a label column, features that are not ``[n, d]`` or
            not finite, binary labels other than 0/1, a task without labels; all before fitting.
    """
    if penalty not in LINEAR_ESTIMATORS:
        raise UnknownNameError(f"unknown linear penalty {penalty!r}; allowed: {', '.join(LINEAR_PENALTIES)}")
    kind = _task_kind(tasks)
    estimator = _make_estimator(LINEAR_ESTIMATORS[penalty][_KINDS.index(kind)], params or {})
    data = single_table(train, "training")
    x = feature_column(data, input_key, "training")
    y = label_matrix(data, tasks, kind)
    names = [f"x{j}" for j in range(x.shape[1])] if feature_names is None else [str(f) for f in feature_names]
    if len(names) != x.shape[1]:
        raise DataError(f"{len(names)} feature names for {x.shape[1]} features in column {input_key!r}")
    if num_clusters is not None and (
        isinstance(num_clusters, bool) or not isinstance(num_clusters, int) or not 1 <= num_clusters <= len(tasks)
    ):
        raise ConfigError(
            f"num_clusters must be an integer from 1 to the number of tasks ({len(tasks)}); got {num_clusters!r}"
        )
    test_data = None
    if test is not None:
        test_data = single_table(test, "test")
        x_test = feature_column(test_data, input_key, "test")
        if x_test.shape[1] != x.shape[1]:
            raise ShapeError(f"test column {input_key!r} has {x_test.shape[1]} features; training has {x.shape[1]}")
        for task in tasks:
            task.labels(test_data.columns)
    start = time.perf_counter()
    try:
        estimator.fit(x, y)
    except ValueError as error:  # the data was checked above: what is left comes from the parameters
        raise ConfigError(f"{type(estimator).__name__} with params {dict(params or {})}: {error}") from error
    seconds = time.perf_counter() - start
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    task_names = [task.name for task in tasks]
    selection = selected_features(coef, feature_names=names, task_names=task_names)
    clusters = None
    if num_clusters is not None or penalty == "clustered":
        k = num_clusters if num_clusters is not None else min(int(estimator.n_clusters), len(tasks))
        clusters = task_clusters(estimator, k, task_names=task_names)
    fitted = {name: float(getattr(estimator, name)) for name in _FITTED if _is_finite(getattr(estimator, name, None))}
    run = LinearRun(
        penalty=penalty,
        estimator=type(estimator).__name__,
        params=_jsonable(dict(params or {})),
        task_names=task_names,
        feature_names=names,
        coef=coef.tolist(),
        intercept=np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64)).tolist(),
        test={},
        selection=selection,
        clusters=clusters,
        seconds=seconds,
        kind=kind,
        input_key=input_key,
        fitted=fitted,
    )
    if test_data is not None:
        run = replace(run, test=run.evaluate(test_data, tasks))
    if run_dir is not None:
        run.write(run_dir)
    return run


def _task_kind(tasks: Sequence[Task]) -> str:
    if not tasks:
        raise ConfigError("the linear method needs at least one task")
    names = [task.name for task in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"task names must be unique; got {names}")
    for task in tasks:
        if task.kind not in _KINDS:
            raise ConfigError(
                f"task {task.name!r} is {task.kind}; linear models take binary or regression tasks "
                "(split a multiclass or multilabel target into binary tasks)"
            )
    kinds = {task.kind for task in tasks}
    if len(kinds) > 1:
        by_kind = {k: [t.name for t in tasks if t.kind == k] for k in sorted(kinds)}
        raise ConfigError(
            f"the linear estimators use one loss for every task, but the tasks mix kinds: {by_kind}; "
            "fit the regression and the binary tasks separately"
        )
    return tasks[0].kind


def _make_estimator(cls: type[Any], params: Mapping[str, Any]) -> Any:
    allowed = sorted(cls().get_params())
    unknown = [name for name in params if name not in allowed]
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for {cls.__name__}; allowed: {', '.join(allowed)}")
    _jsonable(dict(params))
    estimator = cls(**params)
    try:
        estimator._check_params()
        max_iter, tol = estimator.max_iter, estimator.tol
        if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}")
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a finite number >= 0; got {tol!r}")
    except (ValueError, TypeError) as error:
        raise ConfigError(f"invalid parameter for {cls.__name__}: {error}") from error
    return estimator


def _is_finite(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _jsonable(value: Any) -> Any:
    """``value`` with NumPy arrays and scalars turned into lists and numbers; ConfigError if not JSON-able."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ConfigError(f"linear model parameters must be numbers, strings, lists or None; got {type(value).__name__}")

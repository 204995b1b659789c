"""The ``linear`` method: a `multitask.linear` estimator fitted on tasks and datasets, evaluated and saved with
its explanations (selected features, task clusters) as ``linear.json`` and ``linear.png``."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import multitask.linear as lin
from multitask._plots import heatmap, pyplot, save_png
from multitask.analysis._explain import FeatureSelection, selected_features, task_clusters
from multitask.data import ArrayDataset, as_array_dataset
from multitask.errors import ConfigError, DataError, ShapeError, UnknownNameError
from multitask.layout import LINEAR_FILE
from multitask.tasks import Task
from multitask.training.checkpoint import atomic_write_bytes

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
_PLOT_FEATURES = 30

Data = ArrayDataset | Mapping[str, Tensor | np.ndarray[Any, Any]]
Results = dict[str, dict[str, float]]


@dataclass(frozen=True)
class LinearRun:
    """A fitted linear multi-task model: weights, test metrics and explanations, readable back from JSON.

    Attributes:
        penalty: The penalty's name (a key of `LINEAR_ESTIMATORS`).
        estimator: The estimator's class name, e.g. ``"LeastSquaresL21"``.
        params: The constructor arguments given.
        task_names: The tasks, in the order of ``coef``'s rows.
        feature_names: The ``d`` features.
        coef: ``W`` as ``[T][d]``: task ``t`` predicts ``x · coef[t] + intercept[t]``.
        intercept: ``[T]``.
        test: ``{task: {metric: value}}`` on the test split (empty without one).
        selection: The features used, jointly (non-zero rows of ``W``) and per task.
        clusters: ``{task: cluster index}``, or None when not asked for.
        seconds: Wall time of the fit.
        kind: ``"regression"`` (values) or ``"binary"`` (logits) for every task.
        input_key: The dataset column holding the features.
        fitted: Scalar fitted attributes: ``n_iter_``, ``dual_gap_``, ``alpha_`` (CV estimators).
    """

    penalty: str
    estimator: str
    params: dict[str, Any]
    task_names: list[str]
    feature_names: list[str]
    coef: list[list[float]]
    intercept: list[float]
    test: Results
    selection: FeatureSelection
    clusters: dict[str, int] | None
    seconds: float
    kind: str = "regression"
    input_key: str = "x"
    fitted: dict[str, float] = field(default_factory=dict)

    def predict(self, x: Tensor | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``X Wᵀ + b``: ``[n, T]`` values (regression) or logits (binary) for features ``x [n, d]``."""
        array = _features(x, self.input_key)
        coef = np.asarray(self.coef, dtype=np.float64).reshape(len(self.task_names), -1)
        if array.shape[1] != coef.shape[1]:
            raise ShapeError(f"the model has {coef.shape[1]} features; the data has {array.shape[1]}")
        return np.asarray(array @ coef.T + np.asarray(self.intercept, dtype=np.float64))

    def evaluate(self, dataset: Data, tasks: Sequence[Task]) -> Results:
        """``{task: {metric: value}}`` on ``dataset`` from the saved weights, with each `Task`'s own metrics.

        Args:
            dataset: One dataset whose rows carry the features (column ``input_key``) and every task's labels.
            tasks: Tasks named as in ``task_names`` (extra tasks are ignored); their metrics are computed.

        Raises:
            DataError: A task of the run is not among ``tasks``, or the data lacks a column or has
                the wrong number of features.
        """
        by_name = {task.name: task for task in tasks}
        missing = [name for name in self.task_names if name not in by_name]
        if missing:
            raise DataError(f"the linear model was fitted on tasks {self.task_names}; no Task given for {missing}")
        chosen = [by_name[name] for name in self.task_names]
        data = _single(dataset, "evaluation")
        x = _input(data, self.input_key, "evaluation")
        return _evaluate(self.predict(x), chosen, data)

    def to_json(self) -> str:
        """The run as strict JSON; non-finite numbers are written as the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
        payload = asdict(self)
        return json.dumps(_encode(payload), indent=1, allow_nan=False)

    def write(self, directory: str | Path) -> Path:
        """``linear.json`` (atomically) and ``linear.png`` (`plot`) in ``directory``; returns the JSON's path."""
        directory = Path(directory)
        atomic_write_bytes(directory / LINEAR_FILE, self.to_json().encode())
        self.plot(directory / "linear.png")
        return directory / LINEAR_FILE

    @classmethod
    def read(cls, path: str | Path) -> LinearRun:
        """Read a ``linear.json`` (or the one in a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / LINEAR_FILE
        try:
            payload = json.loads(path.read_text())
            selection = payload.pop("selection")
            selection["row_norms"] = [_decode(v) for v in selection["row_norms"]]
            payload["coef"] = [[_decode(v) for v in row] for row in payload["coef"]]
            payload["intercept"] = [_decode(v) for v in payload["intercept"]]
            payload["test"] = {t: {m: _decode(v) for m, v in values.items()} for t, values in payload["test"].items()}
            payload["fitted"] = {k: _decode(v) for k, v in payload.get("fitted", {}).items()}
            payload["seconds"] = _decode(payload["seconds"])
            return cls(selection=FeatureSelection(**selection), **payload)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise DataError(f"cannot read a linear model from {path}: {error}") from error

    def plot(self, path: str | Path) -> Path:
        """Heatmap of ``|W|``: the selected features with the largest row norms ``‖W_j·‖₂`` (at most 30) × tasks."""
        coef = np.abs(np.asarray(self.coef, dtype=float).reshape(len(self.task_names), -1))
        norms = np.nan_to_num(np.asarray(self.selection.row_norms, dtype=float), nan=-1.0)
        selected = len(self.selection.selected)
        shown = min(_PLOT_FEATURES, selected or coef.shape[1])  # nothing selected: the largest rows anyway
        rows = np.argsort(-norms, kind="stable")[:shown]
        names = [_short(self.feature_names[j]) for j in rows]
        plt = pyplot()
        label_width = 0.07 * max((len(name) for name in names), default=0)  # inches for the feature names
        width = max(5.0, 2.6 + 0.75 * len(self.task_names) + label_width)
        figure, ax = plt.subplots(figsize=(width, 1.6 + 0.3 * max(shown, 1)))
        title = f"|W| of {self.estimator}\n{selected} of {coef.shape[1]} features selected"
        if shown < selected:
            title += f", top {shown} shown"
        heatmap(ax, coef[:, rows].T, names, self.task_names, title=title, symmetric=False, fmt="{:.3g}", cmap="Blues")
        top = float(np.nanmax(coef[:, rows])) if coef.size and np.isfinite(coef[:, rows]).any() else 0.0
        ax.images[0].set_clim(0.0, 1.4 * top or 1.0)  # the darkest blue stays light enough for black labels
        ax.set_aspect("auto")  # cells fill the figure, whatever the number of tasks and features
        ax.set_xlabel("task")
        figure.tight_layout()
        return save_png(figure, path)


def _short(name: str, limit: int = 40) -> str:
    """A feature name cut to ``limit`` characters for a plot label (long one-hot names of categorical columns)."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def fit_linear(
    penalty: str,
    tasks: Sequence[Task],
    train: Data,
    test: Data | None = None,
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
    data = _single(train, "training")
    x = _input(data, input_key, "training")
    y = _targets(data, tasks, kind)
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
        test_data = _single(test, "test")
        x_test = _input(test_data, input_key, "test")
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


def _single(data: Data, role: str) -> ArrayDataset:
    if isinstance(data, Mapping) and data and all(isinstance(v, ArrayDataset | Mapping) for v in data.values()):
        raise DataError(
            f"{role} data is one dataset per task; linear models need one dataset whose rows carry every "
            "task's labels (single-input data)"
        )
    return as_array_dataset(data)


def _input(data: ArrayDataset, key: str, role: str) -> np.ndarray[Any, Any]:
    if key not in data:
        raise DataError(f"{role} data has no feature column {key!r}; columns: {sorted(data.keys())}")
    return _features(data.columns[key], key)


def _features(values: Tensor | np.ndarray[Any, Any], key: str) -> np.ndarray[Any, Any]:
    array = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
    if array.ndim != 2:
        raise ShapeError(f"column {key!r} must be features [n, d]; got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise DataError(f"column {key!r} holds NaN or infinite features; impute or drop them first")
    return array


def _targets(data: ArrayDataset, tasks: Sequence[Task], kind: str) -> np.ndarray[Any, Any]:
    """``Y [n, T]`` with ``NaN`` where a task's label is missing."""
    columns = []
    for task in tasks:
        target, mask = task.labels(data.columns)
        if target.dim() != 1:
            raise ShapeError(f"task {task.name!r}: linear models take one label per row; got {tuple(target.shape)}")
        values = target.detach().cpu().double().numpy().copy()
        observed = mask.cpu().numpy()
        values[~observed] = np.nan
        if not observed.any():
            raise DataError(f"task {task.name!r} has no label in the training data")
        if kind == "binary" and not np.isin(values[observed], (0.0, 1.0)).all():
            raise DataError(f"task {task.name!r}: binary labels must be 0 or 1 (NaN for a missing one)")
        if not np.isfinite(values[observed]).all():
            raise DataError(f"task {task.name!r} has infinite labels")
        columns.append(values)
    y = np.stack(columns, axis=1)
    if kind == "binary" and np.unique(y[~np.isnan(y)]).size < 2:
        raise DataError("the binary tasks' labels are all of one class; a logistic model needs both 0 and 1")
    return y


def _evaluate(prediction: np.ndarray[Any, Any], tasks: Sequence[Task], data: ArrayDataset) -> Results:
    results: Results = {}
    for t, task in enumerate(tasks):
        target, mask = task.labels(data.columns)
        evaluation = task.evaluate(torch.from_numpy(np.ascontiguousarray(prediction[:, t])), target, mask)
        results[task.name] = dict(evaluation.metrics)
    return results


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


def _encode(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf": float() reads them back
    return value


def _decode(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number; got {value!r}")
    return float(value)

"""`LinearRun`: a fitted linear multi-task model with its test metrics and explanations, saved as ``linear.json``
and ``linear.png`` and read back."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from multitask._plots import heatmap, pyplot, save_png
from multitask.analysis._explain import FeatureSelection
from multitask.analysis._linear_data import TableLike, as_features, evaluate_predictions, feature_column, single_table
from multitask.errors import DataError, ShapeError
from multitask.layout import LINEAR_FILE
from multitask.tasks import Task
from multitask.training.checkpoint import atomic_write_bytes
from multitask.types import ResultsDict

_PLOT_FEATURES = 30


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
    test: ResultsDict
    selection: FeatureSelection
    clusters: dict[str, int] | None
    seconds: float
    kind: str = "regression"
    input_key: str = "x"
    fitted: dict[str, float] = field(default_factory=dict)

    def predict(self, x: Tensor | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """``X Wᵀ + b``: ``[n, T]`` values (regression) or logits (binary) for features ``x [n, d]``."""
        array = as_features(x, self.input_key)
        coef = np.asarray(self.coef, dtype=np.float64).reshape(len(self.task_names), -1)
        if array.shape[1] != coef.shape[1]:
            raise ShapeError(f"the model has {coef.shape[1]} features; the data has {array.shape[1]}")
        return np.asarray(array @ coef.T + np.asarray(self.intercept, dtype=np.float64))

    def evaluate(self, dataset: TableLike, tasks: Sequence[Task]) -> ResultsDict:
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
        data = single_table(dataset, "evaluation")
        x = feature_column(data, self.input_key, "evaluation")
        return evaluate_predictions(self.predict(x), chosen, data)

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

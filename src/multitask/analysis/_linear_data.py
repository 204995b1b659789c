"""The linear method's data: one in-memory table in, NumPy features and labels out, and the metrics of
predictions on it (the Trainer's own data types are in `multitask.training`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from multitask.data import ArrayDataset, as_array_dataset
from multitask.errors import DataError, ShapeError
from multitask.tasks import Task
from multitask.types import ResultsDict

TableLike = ArrayDataset | Mapping[str, Tensor | np.ndarray[Any, Any]]
"""What the linear method fits and evaluates on: one in-memory table whose rows carry the features and every
task's labels, as an `ArrayDataset` or a mapping of columns (what `multitask.data.as_array_dataset` takes).

Single-input data only; not the Trainer's `multitask.training.Data`, which also takes one dataset per task,
torch datasets and loaders.
"""


def single_table(data: TableLike, role: str) -> ArrayDataset:
    """``data`` as one `ArrayDataset`; DataError for one dataset per task (``role`` names the split)."""
    if isinstance(data, Mapping) and data and all(isinstance(v, ArrayDataset | Mapping) for v in data.values()):
        raise DataError(
            f"{role} data is one dataset per task; linear models need one dataset whose rows carry every "
            "task's labels (single-input data)"
        )
    return as_array_dataset(data)


def feature_column(data: ArrayDataset, key: str, role: str) -> np.ndarray[Any, Any]:
    """The features ``X [n, d]`` of column ``key`` (float64, checked by `as_features`)."""
    if key not in data:
        raise DataError(f"{role} data has no feature column {key!r}; columns: {sorted(data.keys())}")
    return as_features(data.columns[key], key)


def as_features(values: Tensor | np.ndarray[Any, Any], key: str) -> np.ndarray[Any, Any]:
    """``values`` as float64 features ``[n, d]``; ShapeError or DataError if not 2-D or not finite."""
    array = values.detach().cpu().double().numpy() if isinstance(values, Tensor) else np.asarray(values, np.float64)
    if array.ndim != 2:
        raise ShapeError(f"column {key!r} must be features [n, d]; got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise DataError(f"column {key!r} holds NaN or infinite features; impute or drop them first")
    return array


def label_matrix(data: ArrayDataset, tasks: Sequence[Task], kind: str) -> np.ndarray[Any, Any]:
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


def evaluate_predictions(prediction: np.ndarray[Any, Any], tasks: Sequence[Task], data: ArrayDataset) -> ResultsDict:
    """``{task: {metric: value}}`` of ``prediction [n, T]`` (column ``t``: task ``t``) against ``data``'s labels."""
    results: ResultsDict = {}
    for t, task in enumerate(tasks):
        target, mask = task.labels(data.columns)
        evaluation = task.evaluate(torch.from_numpy(np.ascontiguousarray(prediction[:, t])), target, mask)
        results[task.name] = dict(evaluation.metrics)
    return results

"""Tabular data from CSV files: encode features and targets, build datasets (``_csv`` reads the files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._cells import to_float
from multitask.data._csv import StrPath as StrPath  # re-exported: the loaders import it from here
from multitask.data._csv import read_csv_columns as read_csv_columns  # re-exported too
from multitask.data._dataset import ArrayDataset
from multitask.data._registry import register
from multitask.data._targets import TargetKind, TargetLike, as_target_spec, encode_target, fit_target
from multitask.errors import ConfigError, DataError, TargetError

Columns = Mapping[str, NDArray[Any]]
#: What `TabularEncoder` accepts: column name -> 1-D array (or sequence) of cells.
ColumnsLike = Mapping[str, NDArray[Any] | Sequence[Any]]


class TabularEncoder:
    """Turns string columns into a float32 feature matrix: standardised numbers, one-hot categories.

    Everything is learned from the rows passed to `fit` (the training split) and reused by `transform`:

    - numeric columns: ``(value - mean) / std`` with the training mean and (population) std; a constant
      column uses std 1; missing cells (see `MISSING_VALUES`) are filled with the training mean, i.e. 0.
    - categorical columns: one-hot over the sorted categories seen in training, one block per column.
      Values are used verbatim, so a marker such as ``"?"`` is a category of its own. A category never
      seen in training encodes as an all-zero block (no error): the model sees "none of the known ones".

    Features are ordered numeric columns first, then the categorical blocks, each in the order given.

    Args:
        numeric: Names of the numeric columns.
        categorical: Names of the categorical columns.

    Raises:
        ConfigError: No column at all, or a column listed twice.

    Example:
        >>> enc = TabularEncoder(numeric=["age"], categorical=["job"])
        >>> cols = {"age": np.array(["20", "40"]), "job": np.array(["a", "b"])}
        >>> enc.fit(cols).transform({"age": np.array(["30"]), "job": np.array(["c"])})
        array([[0., 0., 0.]], dtype=float32)
        >>> enc.feature_names
        ['age', 'job=a', 'job=b']
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()) -> None:
        names = [*numeric, *categorical]
        if not names:
            raise ConfigError("TabularEncoder needs at least one numeric or categorical column")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ConfigError(f"columns {repeated} are listed more than once in numeric/categorical")
        self.numeric = list(numeric)
        self.categorical = list(categorical)
        self.means_: NDArray[np.float64] | None = None
        self.stds_: NDArray[np.float64] | None = None
        self.categories_: dict[str, list[str]] = {}

    def fit(self, columns: ColumnsLike) -> TabularEncoder:
        """Learn means, stds and vocabularies from ``columns`` (name -> 1-D array of cells)."""
        columns, n = self._select(columns)
        numbers = self._numbers(columns, n)
        counts = np.sum(~np.isnan(numbers), axis=0)
        if np.any(counts == 0):
            empty = [name for name, count in zip(self.numeric, counts, strict=True) if count == 0]
            raise DataError(f"numeric columns {empty} have no values in the training rows; drop them")
        self.means_ = np.nanmean(numbers, axis=0)
        stds = np.nanstd(numbers, axis=0)
        self.stds_ = np.where(stds > 0, stds, 1.0)
        self.categories_ = {name: sorted(set(columns[name].tolist())) for name in self.categorical}
        return self

    def transform(self, columns: ColumnsLike) -> NDArray[np.float32]:
        """Encode ``columns`` with what `fit` learned; returns ``features [n, num_features]`` float32."""
        if self.means_ is None or self.stds_ is None:
            raise DataError("TabularEncoder is not fitted; call fit(train_columns) first")
        columns, n = self._select(columns)
        out = np.zeros((n, self.num_features), dtype=np.float32)
        numbers = self._numbers(columns, n)
        numbers = np.where(np.isnan(numbers), self.means_, numbers)
        out[:, : len(self.numeric)] = (numbers - self.means_) / self.stds_
        offset = len(self.numeric)
        for name in self.categorical:
            vocab = self.categories_[name]
            index = {category: i for i, category in enumerate(vocab)}
            codes = np.fromiter(map(index.get, columns[name].tolist(), repeat(-1)), np.int64, n)
            rows = np.flatnonzero(codes >= 0)
            out[rows, offset + codes[rows]] = 1.0
            offset += len(vocab)
        return out

    def fit_transform(self, columns: ColumnsLike) -> NDArray[np.float32]:
        """`fit` then `transform` the same rows."""
        return self.fit(columns).transform(columns)

    @property
    def feature_names(self) -> list[str]:
        """One name per output column: ``"age"``, then ``"education=Bachelors"`` style one-hot names."""
        if self.means_ is None:
            raise DataError("TabularEncoder is not fitted; call fit(train_columns) first")
        one_hot = [f"{name}={category}" for name in self.categorical for category in self.categories_[name]]
        return [*self.numeric, *one_hot]

    @property
    def num_features(self) -> int:
        """Width of `transform`'s output."""
        return len(self.feature_names)

    def _select(self, columns: ColumnsLike) -> tuple[dict[str, NDArray[Any]], int]:
        """The used columns as 1-D arrays, and their common length."""
        missing = [name for name in [*self.numeric, *self.categorical] if name not in columns]
        if missing:
            raise DataError(f"columns {missing} are missing; available columns: {sorted(columns)}")
        arrays = {name: np.asarray(columns[name]) for name in [*self.numeric, *self.categorical]}
        lengths = {name: array.shape[0] if array.ndim == 1 else -1 for name, array in arrays.items()}
        if len(set(lengths.values())) != 1 or min(lengths.values()) <= 0:
            raise DataError(f"feature columns must be 1-D, non-empty and of equal length; got lengths {lengths}")
        return arrays, next(iter(lengths.values()))

    def _numbers(self, columns: dict[str, NDArray[Any]], n: int) -> NDArray[np.float64]:
        hint = "declare it categorical, or "
        parsed = [to_float(columns[name], f"numeric column {name!r}", hint) for name in self.numeric]
        return np.stack(parsed, axis=1) if parsed else np.empty((n, 0))


@dataclass(frozen=True)
class TabularData:
    """Encoded splits of a tabular multi-task dataset.

    Each split is an `ArrayDataset` with column ``"x"`` (``features [n, num_features]`` float32) and one
    column per task: float32 ``[n]`` for binary (0/1) and regression targets, int64 ``[n]`` for multiclass.

    Attributes:
        train: The training rows (the encoders were fitted on these only).
        val: The validation rows, or None.
        test: The test rows, or None.
        feature_names: One name per feature column, e.g. ``"age"``, ``"education=Bachelors"``.
        kinds: Each task's target kind: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        classes: For each multiclass task, its classes: label ``i`` means ``classes[task][i]``.
    """

    train: ArrayDataset
    val: ArrayDataset | None
    test: ArrayDataset | None
    feature_names: list[str]
    kinds: dict[str, TargetKind]
    classes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        """Width of ``x``."""
        return len(self.feature_names)

    @property
    def tasks(self) -> list[str]:
        """The task names, in the order the targets were given."""
        return list(self.kinds)


def split_columns(columns: Columns, fraction: float, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split rows at random into ``(rest, held_out)`` with ``round(fraction * n)`` held-out rows.

    Both parts keep the original row order. The same ``seed`` gives the same split.
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the held-out fraction must be in (0, 1); got {fraction}")
    n = len(next(iter(columns.values())))
    held = round(fraction * n)
    if held == 0 or held == n:
        raise DataError(f"cannot hold out a fraction {fraction} of {n} rows: one part would be empty")
    order = np.random.default_rng(seed).permutation(n)
    held_rows, rest_rows = np.sort(order[:held]), np.sort(order[held:])
    rest = {name: values[rest_rows] for name, values in columns.items()}
    return rest, {name: values[held_rows] for name, values in columns.items()}


def encode_splits(
    splits: Mapping[str, Columns | None],
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    targets: Mapping[str, TargetLike],
    source: str | None = None,
) -> TabularData:
    """Fit the feature and target encoders on ``splits["train"]`` and encode every split.

    Args:
        splits: ``"train"`` (required), ``"val"`` and ``"test"`` (optional), each name -> column.
        numeric: Numeric feature columns (see `TabularEncoder`).
        categorical: Categorical feature columns (see `TabularEncoder`).
        targets: Task name -> target (see `as_target_spec`).
        source: Where the training rows come from (e.g. the file's name), for the errors.

    Raises:
        ConfigError: No targets, a task named ``"x"``, or a column used both as feature and target.
        DataError: See `TabularEncoder` and `TargetSpec`.
    """
    specs = {task: as_target_spec(task, target) for task, target in targets.items()}
    if not specs:
        raise ConfigError("tabular data needs at least one target, e.g. targets={'y': {'kind': 'binary'}}")
    if "x" in specs:
        raise ConfigError("a task cannot be named 'x': that column holds the features; rename the task")
    leaked = sorted({spec.column for spec in specs.values()} & {*numeric, *categorical})
    if leaked:
        raise ConfigError(f"columns {leaked} are both features and targets; remove them from the features")
    train = splits["train"]
    if train is None:
        raise ConfigError("the training split is required")
    encoder = TabularEncoder(numeric, categorical).fit(train)
    try:
        fitted = {task: fit_target(task, spec, train[spec.column]) for task, spec in specs.items()}
    except TargetError as error:
        raise (error.at(source) if source else error) from None
    datasets: dict[str, ArrayDataset | None] = {}
    for split in ("train", "val", "test"):
        columns = splits.get(split)
        if columns is None:
            datasets[split] = None
            continue
        labels = {
            task: torch.from_numpy(encode_target(task, fit, columns[fit.spec.column], split))
            for task, fit in fitted.items()
        }
        datasets[split] = ArrayDataset(x=torch.from_numpy(encoder.transform(columns)), **labels)
    train_set = datasets["train"]
    assert train_set is not None  # built from `train` above
    return TabularData(
        train=train_set,
        val=datasets["val"],
        test=datasets["test"],
        feature_names=encoder.feature_names,
        kinds={task: spec.kind for task, spec in specs.items()},
        classes={task: fit.classes for task, fit in fitted.items() if fit.spec.kind == "multiclass"},
    )


@register(
    "csv",
    tasks=None,
    input="features",
    paths=("train", "val", "test"),
    description="your CSV files: numeric and categorical feature columns, one label column per task",
)
def load_tabular(
    train: StrPath,
    *,
    val: StrPath | None = None,
    test: StrPath | None = None,
    numeric: Sequence[str] = (),
    categorical: Sequence[str] = (),
    targets: Mapping[str, TargetLike],
    val_fraction: float = 0.0,
    seed: int = 0,
    header: bool = True,
    names: Sequence[str] | None = None,
) -> TabularData:
    """Load CSV files into encoded multi-task splits (what a ``data: {type: csv, ...}`` config calls).

    Features are encoded by a `TabularEncoder` and targets as described in `TargetSpec`, both fitted on
    the training rows only. Columns not named in ``numeric``, ``categorical`` or ``targets`` are ignored.

    Args:
        train: Training CSV file.
        val: Validation CSV file (same columns), or None.
        test: Test CSV file (same columns), or None.
        numeric: Numeric feature columns: standardised; missing cells get the training mean.
        categorical: Categorical feature columns: one-hot with the training vocabulary.
        targets: Task name -> `TargetSpec`, or a mapping ``{"column": ..., "kind": ..., "positive": ...}``
            (``column`` defaults to the task name), or just the kind, e.g. ``{"price": "regression"}``.
        val_fraction: Without a ``val`` file, hold out this fraction of the training rows (at random,
            seeded) as the validation split; 0 means no validation split.
        seed: Seed of that split.
        header: Whether the files start with a header row (see `read_csv_columns`).
        names: Column names for files without a header (or to replace it).

    Returns:
        The encoded splits, feature names, target kinds and multiclass vocabularies.

    Raises:
        ConfigError: Both ``val`` and ``val_fraction`` given, or an invalid target.
        DataError: A file is missing or malformed, a column is unknown, or a target has no labels.

    Example:
        ``load_tabular("adult.csv", numeric=["age"], categorical=["education"],
        targets={"income": {"kind": "binary", "positive": ">50K"}}, val_fraction=0.1)``
    """
    if val is not None and val_fraction:
        raise ConfigError("give either a `val` file or `val_fraction`, not both")
    if val_fraction < 0:
        raise ConfigError(f"val_fraction must be in [0, 1); got {val_fraction}")
    specs = {task: as_target_spec(task, target) for task, target in targets.items()}
    usecols = list(dict.fromkeys([*numeric, *categorical, *(spec.column for spec in specs.values())]))

    def read(path: StrPath | None) -> dict[str, NDArray[np.object_]] | None:
        if path is None:
            return None
        columns = read_csv_columns(path, header=header, names=names, usecols=usecols)
        for name in numeric:  # before any split: a bad cell is named by its row in this file
            to_float(columns[name], f"{Path(path).name}: numeric column {name!r}")
        return columns

    splits = {"train": read(train), "val": read(val), "test": read(test)}
    if val_fraction:
        assert splits["train"] is not None
        splits["train"], splits["val"] = split_columns(splits["train"], val_fraction, seed)
    return encode_splits(splits, numeric=numeric, categorical=categorical, targets=specs, source=Path(train).name)

"""Task targets of tabular data: where a task's labels are and how they are encoded."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from multitask.data._cells import IGNORE_INDEX, MISSING_VALUES, is_missing, parses_as_float, to_float
from multitask.errors import ConfigError, DataError, TargetError

TargetKind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class TargetSpec:
    """Where a task's labels are and how to read them.

    Args:
        column: The CSV column holding the labels.
        kind: ``"binary"``: float32 0/1 labels. The cells must be 0/1, or exactly two distinct strings
            (the later one in sorted order is 1), unless ``positive`` is given: then label =
            ``cell == positive`` for any cell. ``"multiclass"``: int64 class indices into the sorted
            classes seen in training. ``"regression"``: float32 values.
        positive: For ``"binary"`` only: the cell value that means 1.

    Missing cells (see `MISSING_VALUES`) become NaN (binary, regression) or ``IGNORE_INDEX`` (multiclass),
    which the tasks mask out of their losses.
    """

    column: str
    kind: TargetKind
    positive: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(TargetKind):
            raise ConfigError(f"target kind must be one of {get_args(TargetKind)}; got {self.kind!r}")
        if self.positive is not None and self.kind != "binary":
            raise ConfigError(f"`positive` applies to binary targets only; column {self.column!r} is {self.kind}")


TargetLike = TargetSpec | Mapping[str, Any] | str


def as_target_spec(task: str, target: TargetLike) -> TargetSpec:
    """Accept a `TargetSpec`, a mapping such as ``{"column": "y", "kind": "binary"}`` (column defaults to
    the task name) or a bare kind string such as ``"regression"`` (the column is the task name)."""
    if isinstance(target, TargetSpec):
        return target
    if isinstance(target, str):
        return TargetSpec(column=task, kind=target)  # type: ignore[arg-type]  # checked in __post_init__
    if isinstance(target, Mapping):
        unknown = sorted(set(target) - {"column", "kind", "positive"})
        if unknown or "kind" not in target:
            raise ConfigError(
                f"target {task!r} must have `kind` and may have `column`, `positive`; got keys {sorted(target)}"
            )
        return TargetSpec(**{"column": task, **target})
    raise ConfigError(f"target {task!r} must be a TargetSpec, a mapping or a kind string; got {target!r}")


@dataclass(frozen=True)
class FittedTarget:
    spec: TargetSpec
    classes: list[str]  # multiclass: all classes; binary without `positive`: [negative, positive] or []


def fit_target(task: str, spec: TargetSpec, values: NDArray[Any]) -> FittedTarget:
    present = values[~is_missing(values)]
    if len(present) == 0:
        raise TargetError(
            f"target {task!r} (column {spec.column!r}) has no labels in the training rows: every cell is "
            f"missing (one of {sorted(MISSING_VALUES)})",
            task=task,
            field="column",
            fix="check {field} and the file",
        )
    seen = sorted({str(v).strip() for v in present.tolist()})
    if spec.kind == "multiclass":
        return FittedTarget(spec, seen)
    if spec.kind == "regression":
        return FittedTarget(spec, [])
    if spec.positive is not None:
        if spec.positive not in seen:
            raise TargetError(
                f"target {task!r}: positive value {spec.positive!r} never occurs in training; "
                f"seen values include {seen[:10]}",
                task=task,
                field="positive",
                fix="set {field} to one of them",
            )
        return FittedTarget(spec, [])
    if all(parses_as_float(v) for v in seen) and {float(v) for v in seen} <= {0.0, 1.0}:
        return FittedTarget(spec, [])  # 0/1 labels, possibly written 0.0/1.0
    if len(seen) != 2:
        raise TargetError(
            f"binary target {task!r} (column {spec.column!r}) needs 0/1 or exactly two distinct values; "
            f"got {len(seen)}: {seen[:10]}",
            task=task,
            field="positive",
            fix="set {field} to the value that means 1, or use kind 'multiclass'",
        )
    return FittedTarget(spec, seen)


def encode_target(task: str, fitted: FittedTarget, values: NDArray[Any], split: str) -> NDArray[Any]:
    spec = fitted.spec
    if spec.kind == "regression":
        return to_float(values, f"regression target {task!r}").astype(np.float32)
    missing = is_missing(values)
    cells = list(map(str.strip, map(str, values.tolist())))
    if spec.kind == "multiclass":
        index = {name: i for i, name in enumerate(fitted.classes)}
        codes = np.fromiter(map(index.get, cells, repeat(IGNORE_INDEX)), np.int64, len(cells))
        unseen = sorted({cells[i] for i in np.flatnonzero((codes == IGNORE_INDEX) & ~missing)})
        if unseen:
            warnings.warn(
                f"{split}: target {task!r} has classes {unseen[:10]} not seen in training; they are "
                f"treated as missing labels ({IGNORE_INDEX})",
                stacklevel=3,
            )
        codes[missing] = IGNORE_INDEX
        return codes
    if spec.positive is not None:
        labels = np.fromiter(map(spec.positive.__eq__, cells), np.float32, len(cells))
    elif fitted.classes:  # two strings: the later one in sorted order is 1
        mapping = dict(zip(fitted.classes, (0.0, 1.0), strict=True))
        labels = np.fromiter(map(mapping.get, cells, repeat(np.nan)), np.float32, len(cells))
    else:  # 0/1, possibly written 0.0/1.0
        labels = to_float(values, f"{split}: binary target {task!r}").astype(np.float32)
        labels[~np.isin(labels, (0.0, 1.0))] = np.nan
    bad = np.flatnonzero(np.isnan(labels) & ~missing)
    if len(bad):
        expected = fitted.classes or ["0", "1"]
        raise DataError(f"{split}: binary target {task!r} holds {cells[bad[0]]!r}; expected one of {expected}")
    labels[missing] = np.nan
    return labels

"""In-memory multi-task datasets: named tensors that share their first dimension."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor

from multitask.errors import DataError, ShapeError
from multitask.types import BatchDict

Batch = BatchDict
"""`multitask.types.BatchDict` (what ``ArrayDataset[index]`` returns) under its older name, ``multitask.data.Batch``."""


class ArrayDataset:
    """Columns of equal length, indexed in batches by slicing rather than per-sample collation.

    Each column is a tensor (or array) whose first dimension indexes samples, e.g.
    ``ArrayDataset(x=features, income=labels_a, marital=labels_b)``. Indexing with a tensor of
    indices returns a ``dict`` batch, which is what the Trainer feeds the model and the tasks.

    Args:
        **columns: Tensors or NumPy arrays, all with the same first dimension (at least one sample).

    Raises:
        DataError: No column, an empty column, or columns of different lengths.
    """

    def __init__(self, **columns: Tensor | np.ndarray[Any, Any]) -> None:
        if not columns:
            raise DataError("ArrayDataset needs at least one column, e.g. ArrayDataset(x=X, y=Y)")
        tensors = {key: torch.as_tensor(value) for key, value in columns.items()}
        lengths = {key: (int(t.shape[0]) if t.dim() > 0 else -1) for key, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ShapeError(f"ArrayDataset columns must have the same first dimension; got {lengths}")
        length = next(iter(lengths.values()))
        if length <= 0:
            raise DataError(f"ArrayDataset is empty (columns {sorted(tensors)} have no samples)")
        self.columns: dict[str, Tensor] = tensors
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Tensor | slice | int) -> BatchDict:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return {key: value[index] for key, value in self.columns.items()}

    def __contains__(self, key: object) -> bool:
        return key in self.columns

    def keys(self) -> Iterator[str]:
        """The column names."""
        return iter(self.columns)

    def subset(self, index: Tensor | np.ndarray[Any, Any]) -> ArrayDataset:
        """A new dataset holding the rows at ``index`` (a tensor of indices or a boolean mask)."""
        index = torch.as_tensor(index)
        return ArrayDataset(**{key: value[index] for key, value in self.columns.items()})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{key}={tuple(value.shape)}" for key, value in self.columns.items())
        return f"ArrayDataset({shapes})"


def as_array_dataset(data: ArrayDataset | Mapping[str, Tensor | np.ndarray[Any, Any]]) -> ArrayDataset:
    """Accept an `ArrayDataset` or a plain mapping of columns."""
    if isinstance(data, ArrayDataset):
        return data
    if isinstance(data, Mapping):
        return ArrayDataset(**data)
    raise DataError(f"expected an ArrayDataset or a mapping of column name to tensor; got {type(data).__name__}")


SplitData = TypeVar("SplitData", bound=ArrayDataset)


def hold_out(data: SplitData, fraction: float, rng: np.random.Generator, what: str) -> tuple[SplitData, SplitData]:
    """``(rest, held_out)``: ``round(fraction · n)`` rows of ``data`` drawn at random with ``rng``, the rest the others.

    Both parts keep the original row order (a lazy dataset stays lazy).

    Raises:
        DataError: One part would be empty; the message starts with ``what`` (e.g. ``"NYUv2"``).
    """
    order = torch.from_numpy(rng.permutation(len(data)))
    held = round(fraction * len(data))
    if not 0 < held < len(data):
        raise DataError(f"{what}: cannot hold out {fraction} of {len(data)} training rows")
    rest, held_out = data.subset(order[held:].sort().values), data.subset(order[:held].sort().values)
    return cast(SplitData, rest), cast(SplitData, held_out)

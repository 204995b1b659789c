"""`LazyDataset`: samples whose large columns (images, dense labels) are read from files when a batch is drawn."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor

from multitask.data._dataset import ArrayDataset, Batch
from multitask.errors import DataError, ShapeError

#: Reads the file-backed columns of one sample: ``sample number -> {column: array}``.
Reader = Callable[[int], Mapping[str, "np.ndarray[Any, Any] | Tensor"]]


class LazyDataset(ArrayDataset):
    """An `ArrayDataset` whose file-backed columns are read on access, one batch at a time.

    Small columns (class labels, attributes) live in memory as in `ArrayDataset`; the columns that
    ``read`` returns (images, per-pixel labels) are read for the rows of each batch only, so a dataset
    larger than memory trains with the usual loaders. Everything that takes an `ArrayDataset` takes it:
    the Trainer, its loaders, `subset` (which selects rows without reading anything).

    ``columns`` holds the in-memory columns; looking up a file-backed column there (as the Trainer does
    once when it checks a task's labels) reads that column for every row.

    Args:
        size: Number of samples.
        read: ``i -> {column: array}`` for sample ``i`` (0 <= i < size); each column must have the same
            shape for every sample.
        file_columns: The names of the columns ``read`` returns.
        columns: In-memory columns, each with first dimension ``size``.
        num_threads: Threads reading the samples of a batch (image decoding releases the GIL); 0 reads
            them in the calling thread.

    Raises:
        DataError: ``size`` is not positive, a name is both a file and an in-memory column.
        ShapeError: An in-memory column's length differs from ``size``.
    """

    def __init__(
        self,
        size: int,
        read: Reader,
        file_columns: Sequence[str],
        columns: Mapping[str, Tensor | np.ndarray[Any, Any]] | None = None,
        *,
        num_threads: int = 0,
        _rows: Tensor | None = None,
    ) -> None:
        if size <= 0:
            raise DataError(f"LazyDataset is empty (size {size})")
        memory = {key: torch.as_tensor(value) for key, value in (columns or {}).items()}
        both = sorted(set(memory) & set(file_columns))
        if both:
            raise DataError(f"columns {both} are both read from files and held in memory; name them once")
        rows = torch.arange(size) if _rows is None else _rows
        for key, value in memory.items():
            if value.dim() == 0 or value.shape[0] != len(rows):
                raise ShapeError(f"in-memory column {key!r} has shape {tuple(value.shape)}; expected {len(rows)} rows")
        self._size, self._read, self._rows = size, read, rows
        self.file_columns = tuple(file_columns)
        self.num_threads = num_threads
        self.columns = _LazyColumns(memory, self)
        self._length = len(rows)

    def __getitem__(self, index: Tensor | slice | int) -> Batch:
        if isinstance(index, int):
            index = slice(index, index + 1)
        positions = self._rows[index]
        batch = self._read_rows(positions.reshape(-1).tolist())
        batch.update({key: value[index] for key, value in dict.items(self.columns)})
        return batch

    def _read_rows(self, rows: list[int]) -> Batch:
        if not rows:
            raise DataError("a batch must hold at least one row")
        if self.num_threads > 0 and len(rows) > 1:
            with ThreadPoolExecutor(self.num_threads) as pool:
                samples = list(pool.map(self._read, rows))
        else:
            samples = [self._read(row) for row in rows]
        batch: Batch = {}
        for key in self.file_columns:
            try:
                values = [torch.as_tensor(sample[key]) for sample in samples]
            except KeyError:
                raise DataError(f"the reader returned no column {key!r} (it returned {sorted(samples[0])})") from None
            shapes = {tuple(value.shape) for value in values}
            if len(shapes) != 1:
                raise ShapeError(f"column {key!r} has samples of different shapes {sorted(shapes)}; resize them")
            batch[key] = torch.stack(values)
        return batch

    def __contains__(self, key: object) -> bool:
        return key in self.file_columns or dict.__contains__(self.columns, key)

    def keys(self) -> Iterator[str]:
        """The column names: file-backed first, then in-memory."""
        return iter([*self.file_columns, *dict.keys(self.columns)])

    def subset(self, index: Tensor | np.ndarray[Any, Any]) -> LazyDataset:
        """The rows at ``index`` (indices or a boolean mask); nothing is read."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            index = torch.nonzero(index).reshape(-1)
        memory = {key: value[index] for key, value in dict.items(self.columns)}
        return LazyDataset(
            self._size, self._read, self.file_columns, memory, num_threads=self.num_threads, _rows=self._rows[index]
        )

    def __repr__(self) -> str:
        memory = ", ".join(f"{key}={tuple(value.shape)}" for key, value in dict.items(self.columns))
        return f"LazyDataset({len(self)} rows, from files: {list(self.file_columns)}, in memory: {memory or '-'})"


class _LazyColumns(dict[str, Tensor]):
    """The in-memory columns; a file-backed column looked up by name is read for all rows (``__missing__``)."""

    def __init__(self, memory: dict[str, Tensor], owner: LazyDataset) -> None:
        super().__init__(memory)
        self._owner = owner

    def __missing__(self, key: str) -> Tensor:
        if key not in self._owner.file_columns:
            raise KeyError(key)
        return self._owner[slice(0, len(self._owner))][key]

    def __contains__(self, key: object) -> bool:
        return key in self._owner.file_columns or super().__contains__(key)

"""What the Trainer accepts as data, checked at the boundary (up front, or batch by batch for what cannot be
scanned), and how it is iterated.

Accepted, for single-input data (one source whose rows carry every task's labels) or as ``{task: source}``
for multi-input data: an `ArrayDataset` (or a mapping of column tensors), any map-style
``torch.utils.data.Dataset`` of dict items, an ``IterableDataset``, or the user's own ``DataLoader``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from multitask.data import (
    ArrayDataset,
    BatchReader,
    LazyDataset,
    LoaderOptions,
    LoaderSteps,
    MultiInputLoader,
    MultiLoaderSteps,
    Request,
    Sampling,
    SingleInputLoader,
    Transform,
    as_array_dataset,
    as_batch,
    batch_seed,
    is_map_dataset,
    stream_loader,
)
from multitask.errors import ConfigError, DataError
from multitask.tasks import Task
from multitask.types import Batch, BatchDict

# Single-input data: one source whose rows carry every task's labels.
# Multi-input data: a mapping {task name: source}, one source per task.
Data = ArrayDataset | Mapping[str, Any] | Any
Kind = Literal["table", "dataset", "stream", "loader"]
StepLoader = SingleInputLoader | MultiInputLoader | LoaderSteps | MultiLoaderSteps

_ACCEPTED = (
    "an ArrayDataset, a mapping of column tensors, a torch.utils.data.Dataset of dict items, an IterableDataset, "
    "a DataLoader, or {task: one of these}"
)


def _kind(value: Any) -> Kind | None:
    if isinstance(value, ArrayDataset):
        return "table"
    if isinstance(value, DataLoader):
        return "loader"
    if isinstance(value, IterableDataset):
        return "stream"
    if is_map_dataset(value):
        return "dataset"
    return None


def _is_columns(value: Any) -> bool:
    return (
        isinstance(value, Mapping) and bool(value) and all(isinstance(v, Tensor | np.ndarray) for v in value.values())
    )


class TaskData:
    """Data normalised to one source for all tasks or one source per task.

    Tables (`ArrayDataset`) are checked in full here: every task has its label column and, in training
    data, at least one label, and label values match the task's kind. Datasets, streams and loaders are
    not read up front; `check_batch` runs the same checks on their batches as they arrive.
    """

    def __init__(
        self,
        data: Data,
        tasks: Sequence[Task],
        *,
        role: str,
        labelled: bool = True,
        options: LoaderOptions | None = None,
    ) -> None:
        self.role = role
        self.options = options or LoaderOptions()
        self.single: Any = None
        self.per_task: dict[str, Any] = {}
        self.kinds: dict[str, Kind] = {}
        names = [task.name for task in tasks]
        if _is_columns(data):
            self.single = as_array_dataset(data)
        elif isinstance(data, Mapping) and data and all(_kind(v) or _is_columns(v) for v in data.values()):
            unknown = sorted(set(data) - set(names))
            missing = [name for name in names if name not in data]
            if unknown:
                raise DataError(f"{role} data has datasets for unknown task(s) {unknown}; tasks are {names}")
            if missing and role == "training":
                raise DataError(f"{role} data has no dataset for task(s) {missing}; give one dataset per task")
            self.per_task = {
                name: as_array_dataset(data[name]) if _is_columns(data[name]) else data[name]
                for name in names
                if name in data
            }
        elif _kind(data) is not None:
            self.single = data
        elif isinstance(data, Mapping):
            raise DataError(
                f"{role} data must be one dataset for all tasks (columns of tensors) or a mapping "
                f"{{task name: dataset}}; got a mapping of {sorted({type(v).__name__ for v in data.values()})}"
            )
        else:
            raise DataError(f"{role} data must be {_ACCEPTED}; got {type(data).__name__}")
        for task in tasks:
            source = self.dataset_for(task.name)
            if source is None:
                continue
            kind = _kind(source)
            assert kind is not None
            self.kinds[task.name] = kind
            if kind == "table" and labelled:
                self._check_labels(task, source, require=role == "training")
        self._eval_reader: BatchReader | None = None

    @property
    def is_multi_input(self) -> bool:
        return self.single is None

    def dataset_for(self, task: str) -> Any:
        """The source that holds ``task``'s rows (None when this data has none for it)."""
        return self.single if self.single is not None else self.per_task.get(task)

    def size_of(self, task: str) -> int | None:
        """Rows (batches, for a loader) of ``task``'s source; None when unknown (a stream)."""
        source = self.dataset_for(task)
        try:
            return None if source is None else len(source)
        except TypeError:
            return None

    @property
    def unscanned(self) -> frozenset[str]:
        """Tasks whose data was not checked up front (datasets, streams, loaders): `check_batch` checks them."""
        return frozenset(name for name, kind in self.kinds.items() if kind != "table")

    def _check_labels(self, task: Task, dataset: ArrayDataset, require: bool) -> None:
        if task.label_key not in dataset:
            raise DataError(
                f"{self.role} data has no column {task.label_key!r} for task {task.name!r}; "
                f"columns: {sorted(dataset.keys())} (set Task(target_key=...))"
            )
        if isinstance(dataset, LazyDataset) and task.label_key in dataset.file_columns:
            return  # labels read from files batch by batch (e.g. segmentation maps): not read in full up front
        target, mask = task.labels(dataset.columns)
        problem = label_problem(task, target, mask)
        if problem is not None:
            raise DataError(f"task {task.name!r}: the {self.role} data's column {task.label_key!r} {problem}")
        if require and not bool(mask.any()):
            raise DataError(f"task {task.name!r} has no labelled sample in the {self.role} data")

    def loader(
        self,
        task_names: Sequence[str],
        batch_size: int | Mapping[str, int],
        sampling: Sampling,
        tasks_per_step: int | None,
        steps_per_epoch: int | None,
        shuffle: bool = True,
        *,
        temperature: float | None = None,
        transform: Transform | None = None,
    ) -> StepLoader:
        """The training steps' loader for this data."""
        if self.single is not None:
            if isinstance(batch_size, Mapping):
                raise ConfigError("per-task batch sizes need multi-input data ({task: dataset}); give one batch_size")
            kind = _kind(self.single)
            if kind in ("table", "dataset"):
                return SingleInputLoader(
                    self.single, task_names, batch_size, shuffle, options=self.options, transform=transform
                )
            _no_transform(transform, kind)
            loader = self.single if kind == "loader" else stream_loader(self.single, batch_size, self.options)
            return LoaderSteps(loader, task_names, self.options)
        kinds = {self.kinds[name] for name in self.per_task}
        if kinds <= {"table", "dataset"}:
            return MultiInputLoader(
                self.per_task,
                batch_size,
                sampling=sampling,
                tasks_per_step=tasks_per_step,
                steps_per_epoch=steps_per_epoch,
                shuffle=shuffle,
                temperature=temperature,
                options=self.options,
                transform=transform,
            )
        if kinds & {"table", "dataset"}:
            raise DataError(
                "multi-input training data mixes datasets with DataLoaders or streams: give every task a dataset "
                "(the library plans and reads the batches) or every task a DataLoader"
            )
        _no_transform(transform, "loader")
        sizes = batch_size if isinstance(batch_size, Mapping) else dict.fromkeys(self.per_task, batch_size)
        loaders = {
            name: source if isinstance(source, DataLoader) else stream_loader(source, sizes[name], self.options)
            for name, source in self.per_task.items()
        }
        return MultiLoaderSteps(
            loaders,
            sampling=sampling,
            tasks_per_step=tasks_per_step,
            steps_per_epoch=steps_per_epoch,
            temperature=temperature,
            options=self.options,
        )

    def eval_groups(self, batch_size: int, task_names: Sequence[str]) -> Iterator[tuple[BatchDict, tuple[str, ...]]]:
        """Batches in order with the tasks to compute on each."""
        sources = {"": self.single} if self.single is not None else dict(self.per_task)
        groups = {"": tuple(task_names)} if self.single is not None else {name: (name,) for name in sources}
        for name, source in sources.items():
            if isinstance(source, DataLoader | IterableDataset):
                loader = source if isinstance(source, DataLoader) else stream_loader(source, batch_size, self.options)
                for value in loader:
                    yield as_batch(value, self.options.item_names), groups[name]
                continue
            for batch in self._reader().read(_in_order(name, len(source), batch_size)):
                yield batch, groups[name]

    def _reader(self) -> BatchReader:
        if self._eval_reader is None:
            sources = {"": self.single} if self.single is not None else dict(self.per_task)
            maps = {name: s for name, s in sources.items() if not isinstance(s, DataLoader | IterableDataset)}
            self._eval_reader = BatchReader(maps, self.options)
        return self._eval_reader


def loader_length(loader: StepLoader) -> int | None:
    """Steps per epoch; None for a stream without a length."""
    try:
        return len(loader)
    except TypeError:
        return None


def _in_order(source: str, rows: int, batch_size: int) -> Iterator[Request]:
    for number, start in enumerate(range(0, rows, batch_size)):
        yield Request(source, slice(start, min(start + batch_size, rows)), batch_seed(0, -1, number))


def _no_transform(transform: Transform | None, kind: str | None) -> None:
    if transform is not None:
        raise ConfigError(
            f"a training transform is applied to the rows the library reads; a {kind} reads its own: "
            "apply the augmentation in its dataset, or give the Trainer the dataset instead"
        )


def label_problem(task: Task, target: Tensor, mask: Tensor) -> str | None:
    """What is wrong with ``task``'s labelled values for its kind, or None.

    Binary and multi-label targets are 0 or 1; multiclass targets are
    non-negative integer class indices (``ignore_index`` marks a missing one); every target is numeric.
    """
    if target.dtype == torch.bool:
        return None
    if target.is_complex():
        return f"holds {target.dtype} values; labels must be real numbers"
    labelled = target[mask] if mask.shape == target.shape else target
    if labelled.numel() == 0:
        return None
    if task.kind in ("binary", "multilabel"):
        values = labelled.double()
        wrong = (values != 0) & (values != 1)
        if bool(wrong.any()):
            return (
                f"holds {float(values[wrong][0]):g} (values from {float(values.min()):g} to {float(values.max()):g}); "
                f"{task.kind} labels are 0 or 1 (NaN marks a missing label)"
            )
    elif task.kind == "multiclass":
        values = labelled.double()
        if bool((values != values.round()).any()) or bool(torch.isnan(values).any()):
            return (
                "holds non-integer values; multiclass labels are class indices "
                f"(ignore_index={task.ignore_index} marks a missing one)"
            )
        if bool((values < 0).any()):
            return (
                f"holds the class index {int(values.min())}; class indices start at 0 "
                f"(ignore_index={task.ignore_index} marks a missing label)"
            )
    return None


def check_batch(tasks: Mapping[str, Task], batch: Batch, names: Sequence[str], where: str) -> None:
    """The up-front label checks of a table, on one batch of data that could not be scanned.

    Raises:
        DataError: A task's label column is missing, or its values do not fit the task's kind; the message
            names the task and ``where`` (split, epoch, step).
    """
    for name in names:
        task = tasks[name]
        if task.label_key not in batch:
            raise DataError(
                f"task {name!r}: {where}: the batch has no column {task.label_key!r} for its labels; "
                f"columns: {sorted(batch)} (set Task(target_key=...))"
            )
        target, mask = task.labels(batch)
        problem = label_problem(task, target, mask)
        if problem is not None:
            raise DataError(f"task {name!r}: {where}: column {task.label_key!r} {problem}")


def check_classes(
    tasks: Mapping[str, Task],
    outputs: Mapping[str, Tensor],
    batch: Batch,
    names: Sequence[str],
    where: str,
) -> None:
    """Multiclass labels against the head's output width, before the loss (which would fail with a traceback)."""
    for name in names:
        task = tasks[name]
        if task.kind != "multiclass" or name not in outputs or outputs[name].dim() < 2:
            continue
        target, mask = task.labels(batch)
        num_classes = outputs[name].shape[1]
        labelled = target[mask] if mask.shape == target.shape else target
        if labelled.numel() and int(labelled.max()) >= num_classes:
            raise DataError(
                f"task {name!r}: {where}: the batch holds the class index {int(labelled.max())} but the head outputs "
                f"{num_classes} classes (0 .. {num_classes - 1}): give the head one output per class"
            )

"""What the Trainer accepts as data, checked once at the boundary, and how it is iterated."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from torch import Tensor

from multitask.data._dataset import ArrayDataset, Batch, as_array_dataset
from multitask.data._lazy import LazyDataset
from multitask.data._loaders import MultiInputLoader, Sampling, SingleInputLoader, iter_batches
from multitask.errors import DataError
from multitask.tasks import Task

# Single-input data: one dataset (or mapping of columns) whose rows carry every task's labels.
# Multi-input data: a mapping {task name: dataset}, one dataset per task.
Data = ArrayDataset | Mapping[str, Any]


class TaskData:
    """Data normalised to either one dataset for all tasks or one dataset per task."""

    def __init__(self, data: Data, tasks: Sequence[Task], *, role: str, labelled: bool = True) -> None:
        self.role = role
        self.single: ArrayDataset | None = None
        self.per_task: dict[str, ArrayDataset] = {}
        names = [task.name for task in tasks]
        if isinstance(data, Mapping) and data and all(isinstance(v, ArrayDataset | Mapping) for v in data.values()):
            unknown = sorted(set(data) - set(names))
            missing = [name for name in names if name not in data]
            if unknown:
                raise DataError(f"{role} data has datasets for unknown task(s) {unknown}; tasks are {names}")
            if missing and role == "training":
                raise DataError(f"{role} data has no dataset for task(s) {missing}; give one dataset per task")
            self.per_task = {name: as_array_dataset(data[name]) for name in names if name in data}
        elif isinstance(data, ArrayDataset | Mapping):
            if isinstance(data, Mapping) and any(not isinstance(v, Tensor | np.ndarray) for v in data.values()):
                raise DataError(
                    f"{role} data must be one dataset for all tasks (columns of tensors) or a mapping "
                    f"{{task name: dataset}}; got a mapping of {sorted({type(v).__name__ for v in data.values()})}"
                )
            self.single = as_array_dataset(data)
        else:
            raise DataError(
                f"{role} data must be an ArrayDataset, a mapping of column tensors, or {{task: dataset}}; "
                f"got {type(data).__name__}"
            )
        for task in tasks:
            dataset = self.dataset_for(task.name)
            if dataset is not None and labelled:
                self._check_labels(task, dataset, require=role == "training")

    @property
    def is_multi_input(self) -> bool:
        return self.single is None

    def dataset_for(self, task: str) -> ArrayDataset | None:
        return self.single if self.single is not None else self.per_task.get(task)

    def _check_labels(self, task: Task, dataset: ArrayDataset, require: bool) -> None:
        if task.label_key not in dataset:
            raise DataError(
                f"{self.role} data has no column {task.label_key!r} for task {task.name!r}; "
                f"columns: {sorted(dataset.keys())} (set Task(target_key=...))"
            )
        if isinstance(dataset, LazyDataset) and task.label_key in dataset.file_columns:
            return  # labels read from files batch by batch (e.g. segmentation maps): not read in full up front
        _, mask = task.labels(dataset.columns)
        if require and not bool(mask.any()):
            raise DataError(f"task {task.name!r} has no labelled sample in the {self.role} data")

    def loader(
        self,
        task_names: Sequence[str],
        batch_size: int,
        sampling: Sampling,
        tasks_per_step: int | None,
        steps_per_epoch: int | None,
        shuffle: bool = True,
    ) -> SingleInputLoader | MultiInputLoader:
        if self.single is not None:
            return SingleInputLoader(self.single, task_names, batch_size, shuffle)
        return MultiInputLoader(
            self.per_task,
            batch_size,
            sampling=sampling,
            tasks_per_step=tasks_per_step,
            steps_per_epoch=steps_per_epoch,
            shuffle=shuffle,
        )

    def eval_groups(self, batch_size: int, task_names: Sequence[str]) -> Iterator[tuple[Batch, tuple[str, ...]]]:
        """Batches in order with the tasks to compute on each."""
        if self.single is not None:
            for batch in iter_batches(self.single, batch_size):
                yield batch, tuple(task_names)
        else:
            for name, dataset in self.per_task.items():
                for batch in iter_batches(dataset, batch_size):
                    yield batch, (name,)

"""Multi-task batching: the order in which samples and tasks are drawn, reproducible epoch by epoch.

A training *step* is a list of groups ``(batch, task_names)``: one group holding every task for
single-input data, one group per drawn task for multi-input data. Every epoch's order is a pure
function of ``(seed, epoch)``, so a run resumed at step k of an epoch replays exactly the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor

from multitask.data._dataset import ArrayDataset, Batch
from multitask.errors import ConfigError, DataError

Step = list[tuple[Batch, tuple[str, ...]]]
Sampling = Literal["round_robin", "proportional", "uniform"]
SAMPLING_RULES: tuple[str, ...] = get_args(Sampling)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random source of one epoch's data order, derived from the run's seed and the epoch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def iter_batches(dataset: ArrayDataset, batch_size: int) -> Iterator[Batch]:
    """Consecutive batches in dataset order (for evaluation and prediction)."""
    for start in range(0, len(dataset), batch_size):
        yield dataset[slice(start, start + batch_size)]


class SingleInputLoader:
    """Shuffled batches of one dataset whose rows carry the labels of every task.

    Args:
        dataset: The rows.
        task_names: Tasks every batch is used for.
        batch_size: Rows per step; the last step of an epoch may be smaller.
        shuffle: Draw a new permutation every epoch (from ``(seed, epoch)``).
    """

    def __init__(self, dataset: ArrayDataset, task_names: Sequence[str], batch_size: int, shuffle: bool = True):
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive; got {batch_size}")
        self.dataset = dataset
        self.task_names = tuple(task_names)
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.dataset) / self.batch_size)

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """The steps of ``epoch``, beginning at step ``start``."""
        n = len(self.dataset)
        order = torch.randperm(n, generator=epoch_generator(seed, epoch)) if self.shuffle else torch.arange(n)
        for step in range(start, len(self)):
            index = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield [(self.dataset[index], self.task_names)]


class MultiInputLoader:
    """One dataset per task; each step draws a batch from each of ``tasks_per_step`` tasks.

    Which tasks a step draws follows ``sampling``: ``round_robin`` cycles through the tasks in
    order; ``proportional`` draws tasks with probability proportional to their dataset sizes
    (Sanh et al. 2019; Liu et al., MT-DNN, 2019); ``uniform`` draws them with equal probability.
    When every task is drawn at every step (``tasks_per_step=None``, the default), the three
    rules coincide. Each task reads its own shuffled stream, reshuffled whenever it runs out, so
    small tasks are revisited within an epoch.

    An epoch has ``steps_per_epoch`` steps; by default, enough for the largest task to be read once
    when all tasks are drawn every step, and otherwise enough to read as many samples as all
    datasets hold together.

    Args:
        datasets: ``{task: dataset}``.
        batch_size: Rows per task batch.
        sampling: ``"round_robin"``, ``"proportional"`` or ``"uniform"``.
        tasks_per_step: How many tasks each step draws (without replacement); None for all.
        steps_per_epoch: Steps per epoch; None for the default above.
        shuffle: Shuffle each task's stream.
    """

    def __init__(
        self,
        datasets: Mapping[str, ArrayDataset],
        batch_size: int,
        *,
        sampling: Sampling = "round_robin",
        tasks_per_step: int | None = None,
        steps_per_epoch: int | None = None,
        shuffle: bool = True,
    ) -> None:
        if not datasets:
            raise DataError("MultiInputLoader needs at least one task dataset")
        if sampling not in SAMPLING_RULES:
            raise ConfigError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLING_RULES)}")
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive; got {batch_size}")
        num_tasks = len(datasets)
        if tasks_per_step is not None and not 1 <= tasks_per_step <= num_tasks:
            raise ConfigError(f"tasks_per_step must be between 1 and {num_tasks}; got {tasks_per_step}")
        if steps_per_epoch is not None and steps_per_epoch <= 0:
            raise ConfigError(f"steps_per_epoch must be positive; got {steps_per_epoch}")
        self.datasets = dict(datasets)
        self.task_names = tuple(datasets)
        self.batch_size = batch_size
        self.sampling = sampling
        self.tasks_per_step = tasks_per_step or num_tasks
        self.shuffle = shuffle
        sizes = [len(d) for d in self.datasets.values()]
        if self.tasks_per_step == num_tasks:
            default_steps = math.ceil(max(sizes) / batch_size)
        else:
            default_steps = math.ceil(sum(sizes) / (batch_size * self.tasks_per_step))
        self.steps_per_epoch = steps_per_epoch or default_steps
        self._sizes = torch.tensor(sizes, dtype=torch.float64)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def _draw_tasks(self, step: int, generator: torch.Generator) -> list[int]:
        num_tasks, k = len(self.task_names), self.tasks_per_step
        if k == num_tasks:
            return list(range(num_tasks))
        if self.sampling == "round_robin":
            return [(step * k + i) % num_tasks for i in range(k)]
        probabilities = self._sizes if self.sampling == "proportional" else torch.ones(num_tasks, dtype=torch.float64)
        drawn: Tensor = torch.multinomial(probabilities, k, replacement=False, generator=generator)
        return sorted(drawn.tolist())

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """The steps of ``epoch``, beginning at step ``start`` (earlier steps are planned, not loaded)."""
        generator = epoch_generator(seed, epoch)
        streams = {name: _Stream(len(d), self.batch_size, self.shuffle) for name, d in self.datasets.items()}
        for step in range(self.steps_per_epoch):
            groups: Step = []
            for task_index in self._draw_tasks(step, generator):
                name = self.task_names[task_index]
                index = streams[name].next(generator)
                if step >= start:
                    groups.append((self.datasets[name][index], (name,)))
            if step >= start:
                yield groups


class _Stream:
    """Endless batches of indices into one dataset, reshuffled each time it is exhausted."""

    def __init__(self, size: int, batch_size: int, shuffle: bool) -> None:
        self.size, self.batch_size, self.shuffle = size, batch_size, shuffle
        self.order = torch.empty(0, dtype=torch.long)
        self.position = 0

    def next(self, generator: torch.Generator) -> Tensor:
        if self.position >= len(self.order):
            self.order = torch.randperm(self.size, generator=generator) if self.shuffle else torch.arange(self.size)
            self.position = 0
        index = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return index

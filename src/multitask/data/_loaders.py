"""Multi-task batching: the order in which samples and tasks are drawn, reproducible epoch by epoch.

A training *step* is a list of groups ``(batch, task_names)``: one group holding every task for
single-input data, one group per drawn task for multi-input data. Every epoch's order is a pure
function of ``(seed, epoch)``, so a run resumed at step k of an epoch replays exactly the same batches.
The loaders *plan* each step's rows (`plan`); a `multitask.data.BatchReader` reads them, in the
training process or in ``DataLoader`` workers (`multitask.data.LoaderOptions`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Literal, get_args

import torch
from torch import Tensor

from multitask.data._dataset import ArrayDataset
from multitask.data._pipeline import (
    BatchReader,
    LoaderOptions,
    Request,
    Source,
    Transform,
    batch_seed,
    epoch_generator,
    source_length,
)
from multitask.errors import ConfigError, DataError
from multitask.types import BatchDict

Step = list[tuple[BatchDict, tuple[str, ...]]]
Sampling = Literal["round_robin", "proportional", "uniform", "temperature"]
SAMPLING_RULES: tuple[str, ...] = get_args(Sampling)


def iter_batches(dataset: ArrayDataset, batch_size: int) -> Iterator[BatchDict]:
    """Consecutive batches in dataset order (for evaluation and prediction)."""
    for start in range(0, len(dataset), batch_size):
        yield dataset[slice(start, start + batch_size)]


def _check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size must be a positive integer; got {batch_size!r}")


class SingleInputLoader:
    """Shuffled batches of one dataset whose rows carry the labels of every task.

    Args:
        dataset: The rows: an `ArrayDataset` or any map-style ``torch.utils.data.Dataset`` of dict items.
        task_names: Tasks every batch is used for.
        batch_size: Rows per step; the last step of an epoch may be smaller.
        shuffle: Draw a new permutation every epoch (from ``(seed, epoch)``).
        options: How the batches are read (workers, collation; `LoaderOptions`).
        transform: A per-sample transform applied to every batch this loader reads (training augmentation).
    """

    def __init__(
        self,
        dataset: Source,
        task_names: Sequence[str],
        batch_size: int,
        shuffle: bool = True,
        *,
        options: LoaderOptions | None = None,
        transform: Transform | None = None,
    ) -> None:
        _check_batch_size(batch_size)
        self.dataset = dataset
        self.task_names = tuple(task_names)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.reader = BatchReader({"": dataset}, options, transform)

    #: The order is the library's: a resumed run skips the steps already taken and reads the same batches.
    exact_resume = True

    def __len__(self) -> int:
        return math.ceil(source_length(self.dataset) / self.batch_size)

    def plan(self, epoch: int, seed: int, start: int = 0) -> list[list[Request]]:
        """The requested rows of each step of ``epoch`` from step ``start`` (nothing is read)."""
        n = source_length(self.dataset)
        order = torch.randperm(n, generator=epoch_generator(seed, epoch)) if self.shuffle else torch.arange(n)
        return [
            [Request("", order[step * self.batch_size : (step + 1) * self.batch_size], batch_seed(seed, epoch, step))]
            for step in range(start, len(self))
        ]

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """The steps of ``epoch``, beginning at step ``start``."""
        plan = self.plan(epoch, seed, start)
        batches = self.reader.read(request for step in plan for request in step)
        for _ in plan:
            yield [(next(batches), self.task_names)]


class TaskSchedule:
    """Which tasks each step of a multi-input epoch draws.

    ``round_robin`` cycles through the tasks in order; ``proportional`` draws task t with probability
    p_t ∝ n_t (its number of rows; Sanh et al. 2019; Liu et al., MT-DNN, 2019); ``uniform`` with equal
    probability; ``temperature`` with p_t ∝ n_t^(1/τ) (Arivazhagan et al. 2019, "Massively Multilingual
    Neural Machine Translation in the Wild"; Raffel et al. 2020, T5, Sec. 3.5.2): τ = 1 is proportional,
    τ → ∞ uniform, values between them up-sample small tasks. A step draws ``tasks_per_step`` tasks
    without replacement; when it draws all of them the rules coincide.

    Args:
        sizes: ``n_t`` for each task, in task order.
        sampling: The rule.
        tasks_per_step: Tasks per step; None for all.
        temperature: τ for ``sampling="temperature"`` (``float("inf")`` allowed).

    Raises:
        ConfigError: An unknown rule, ``tasks_per_step`` outside 1 .. T, ``temperature`` missing, not
            positive, or given for another rule.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        sampling: Sampling = "round_robin",
        tasks_per_step: int | None = None,
        temperature: float | None = None,
    ) -> None:
        if sampling not in SAMPLING_RULES:
            raise ConfigError(f"unknown sampling {sampling!r}; allowed: {', '.join(SAMPLING_RULES)}")
        num_tasks = len(sizes)
        if tasks_per_step is not None and not 1 <= tasks_per_step <= num_tasks:
            raise ConfigError(f"tasks_per_step must be between 1 and {num_tasks}; got {tasks_per_step}")
        if sampling == "temperature" and (temperature is None or not temperature > 0):
            raise ConfigError(f"sampling 'temperature' needs a temperature τ > 0 (inf: uniform); got {temperature}")
        if sampling != "temperature" and temperature is not None:
            raise ConfigError(f"temperature is read only with sampling 'temperature' (sampling is {sampling!r})")
        self.sampling = sampling
        self.num_tasks = num_tasks
        self.tasks_per_step = tasks_per_step or num_tasks
        sizes_64 = torch.tensor(list(sizes), dtype=torch.float64)
        if sampling == "proportional":
            self.probabilities = sizes_64
        elif sampling == "uniform" or (sampling == "temperature" and math.isinf(temperature or 0.0)):
            self.probabilities = torch.ones(num_tasks, dtype=torch.float64)
        elif sampling == "temperature":
            assert temperature is not None
            self.probabilities = sizes_64 ** (1.0 / temperature)
        else:
            self.probabilities = torch.ones(num_tasks, dtype=torch.float64) / num_tasks

    @property
    def draws_all(self) -> bool:
        """True when every step draws every task."""
        return self.tasks_per_step == self.num_tasks

    def expected_frequencies(self) -> Tensor:
        """p_t, the probability that a one-task step draws task t (round-robin: 1/T)."""
        return self.probabilities / self.probabilities.sum()

    def draw(self, step: int, generator: torch.Generator) -> list[int]:
        """The task indices step ``step`` draws, in task order (consumes ``generator`` for random rules)."""
        k = self.tasks_per_step
        if k == self.num_tasks:
            return list(range(self.num_tasks))
        if self.sampling == "round_robin":
            return [(step * k + i) % self.num_tasks for i in range(k)]
        drawn: Tensor = torch.multinomial(self.probabilities, k, replacement=False, generator=generator)
        return sorted(drawn.tolist())


def default_steps(batches_per_task: Sequence[Fraction], schedule: TaskSchedule) -> int:
    """Steps per epoch: enough for the largest task to be read once when every step draws every task,
    else enough to read as many batches as all tasks hold together."""
    if schedule.draws_all:
        return math.ceil(max(batches_per_task))
    return math.ceil(sum(batches_per_task) / schedule.tasks_per_step)


def batch_sizes(batch_size: int | Mapping[str, int], names: Sequence[str]) -> dict[str, int]:
    """``{task: rows per batch}`` from one size for all tasks or a size per task."""
    if isinstance(batch_size, Mapping):
        unknown, missing = sorted(set(batch_size) - set(names)), [n for n in names if n not in batch_size]
        if unknown or missing:
            raise ConfigError(
                f"per-task batch sizes must name every task once: unknown {unknown}, missing {missing}; "
                f"tasks {list(names)}"
            )
        sizes = {name: batch_size[name] for name in names}
    else:
        sizes = dict.fromkeys(names, batch_size)
    for size in sizes.values():
        _check_batch_size(size)
    return sizes


class MultiInputLoader:
    """One dataset per task; each step draws a batch from each of ``tasks_per_step`` tasks.

    Which tasks a step draws follows ``sampling`` (see `TaskSchedule`: ``round_robin``,
    ``proportional``, ``uniform``, ``temperature``). Each task reads its own shuffled stream,
    reshuffled whenever it runs out, so small tasks are revisited within an epoch.

    An epoch has ``steps_per_epoch`` steps; by default, enough for the largest task to be read once
    when all tasks are drawn every step, and otherwise enough to read as many batches as all
    datasets hold together.

    Args:
        datasets: ``{task: dataset}`` (`ArrayDataset` or map-style ``torch.utils.data.Dataset``).
        batch_size: Rows per task batch: one size, or ``{task: size}``.
        sampling: The task sampling rule.
        tasks_per_step: How many tasks each step draws (without replacement); None for all.
        steps_per_epoch: Steps per epoch; None for the default above.
        shuffle: Shuffle each task's stream.
        temperature: τ of ``sampling="temperature"``.
        options: How the batches are read (`LoaderOptions`).
        transform: A per-sample transform applied to every batch this loader reads.
    """

    def __init__(
        self,
        datasets: Mapping[str, Source],
        batch_size: int | Mapping[str, int],
        *,
        sampling: Sampling = "round_robin",
        tasks_per_step: int | None = None,
        steps_per_epoch: int | None = None,
        shuffle: bool = True,
        temperature: float | None = None,
        options: LoaderOptions | None = None,
        transform: Transform | None = None,
    ) -> None:
        if not datasets:
            raise DataError("MultiInputLoader needs at least one task dataset")
        if steps_per_epoch is not None and steps_per_epoch <= 0:
            raise ConfigError(f"steps_per_epoch must be positive; got {steps_per_epoch}")
        self.datasets = dict(datasets)
        self.task_names = tuple(datasets)
        self.batch_sizes = batch_sizes(batch_size, self.task_names)
        sizes = [source_length(d) for d in self.datasets.values()]
        self.schedule = TaskSchedule(sizes, sampling, tasks_per_step, temperature)
        self.sampling = sampling
        self.tasks_per_step = self.schedule.tasks_per_step
        self.shuffle = shuffle
        per_task = [Fraction(n, self.batch_sizes[name]) for name, n in zip(self.task_names, sizes, strict=True)]
        self.steps_per_epoch = steps_per_epoch or default_steps(per_task, self.schedule)
        self.reader = BatchReader(self.datasets, options, transform)

    #: The order is the library's: a resumed run skips the steps already taken and reads the same batches.
    exact_resume = True

    @property
    def batch_size(self) -> int:
        """The largest task batch."""
        return max(self.batch_sizes.values())

    def __len__(self) -> int:
        return self.steps_per_epoch

    def plan(self, epoch: int, seed: int, start: int = 0) -> list[list[Request]]:
        """The requested rows of each step of ``epoch`` from step ``start`` (earlier steps are drawn, not kept)."""
        generator = epoch_generator(seed, epoch)
        streams = {
            name: _Stream(source_length(d), self.batch_sizes[name], self.shuffle) for name, d in self.datasets.items()
        }
        plan: list[list[Request]] = []
        for step in range(self.steps_per_epoch):
            requests = []
            for group, task_index in enumerate(self.schedule.draw(step, generator)):
                name = self.task_names[task_index]
                index = streams[name].next(generator)
                requests.append(Request(name, index, batch_seed(seed, epoch, step, group)))
            if step >= start:
                plan.append(requests)
        return plan

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """The steps of ``epoch``, beginning at step ``start`` (earlier steps are planned, not loaded)."""
        plan = self.plan(epoch, seed, start)
        batches = self.reader.read(request for step in plan for request in step)
        for requests in plan:
            yield [(next(batches), (request.source,)) for request in requests]


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

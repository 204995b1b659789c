"""Steps from the user's own ``DataLoader`` (or an ``IterableDataset``): its order, its workers, its collation.

The library cannot choose the rows of such a loader, so it only reads it. Resuming a killed run mid-epoch
is exact when the loader's sampler is a `multitask.data.EpochSampler` (the order is then a function of
``(seed, epoch)`` and the rows already read can be skipped without reading them); with any other sampler,
or a stream, a resumed run starts the interrupted epoch again, and says so once.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, IterableDataset

from multitask.data._loaders import Sampling, Step, TaskSchedule, default_steps
from multitask.data._pipeline import EpochSampler, LoaderOptions, as_batch, collate, epoch_generator
from multitask.errors import ConfigError, DataError


def epoch_sampler(loader: DataLoader[Any]) -> EpochSampler | None:
    """The loader's `EpochSampler` when batches are drawn from it by a plain ``BatchSampler``, else None."""
    if isinstance(loader.dataset, IterableDataset):
        return None
    batches = loader.batch_sampler
    if type(batches) is BatchSampler and isinstance(batches.sampler, EpochSampler):
        return batches.sampler
    return None


def loader_length(loader: DataLoader[Any]) -> int | None:
    """Batches per pass of ``loader`` (None for a stream without ``__len__``)."""
    sampler = epoch_sampler(loader)
    if sampler is not None:
        assert loader.batch_size is not None
        rows = sampler.num_rows
        return rows // loader.batch_size if loader.drop_last else math.ceil(rows / loader.batch_size)
    try:
        return len(loader)
    except TypeError:
        return None


@contextlib.contextmanager
def _own_generators() -> Iterator[None]:
    """Keep the training's generator untouched by a ``DataLoader`` starting its workers (it draws a base seed)."""
    with torch.random.fork_rng(devices=[]):
        yield


def _position(sampler: EpochSampler, epoch: int, batches_read: int, batch_size: int, per_pass: int) -> None:
    cycle, within = divmod(batches_read, per_pass)
    sampler.set_epoch(epoch, start=min(within * batch_size, sampler.num_rows), cycle=cycle)


class _Passes:
    """Batches of one user loader, starting a new pass whenever it runs out (multi-input data revisits it)."""

    def __init__(self, loader: DataLoader[Any], item_names: Sequence[str] | None, name: str) -> None:
        self.loader, self.item_names, self.name = loader, item_names, name
        self.sampler = epoch_sampler(loader)
        self.per_pass = loader_length(loader)
        self._iterator: Iterator[Any] | None = None
        self.epoch, self.read = 0, 0

    def begin(self, epoch: int, batches_read: int) -> None:
        self.epoch, self.read, self._iterator = epoch, batches_read, None
        if self.sampler is not None:
            assert self.per_pass is not None and self.loader.batch_size is not None
            _position(self.sampler, epoch, batches_read, self.loader.batch_size, self.per_pass)

    def next(self) -> dict[str, torch.Tensor]:
        for attempt in range(2):
            if self._iterator is None:
                if self.sampler is not None and self.per_pass is not None and self.read % self.per_pass == 0:
                    self.sampler.set_epoch(self.epoch, 0, self.read // self.per_pass)
                with _own_generators():
                    self._iterator = iter(self.loader)
            try:
                value = next(self._iterator)
            except StopIteration:
                self._iterator = None
                if attempt == 1:
                    break
                continue
            self.read += 1
            return as_batch(value, self.item_names)
        raise DataError(f"the data loader of {self.name} yields no batch")

    def stop(self) -> None:
        self._iterator = None


class LoaderSteps:
    """Steps from one user ``DataLoader`` whose batches carry every task's labels.

    Args:
        loader: The user's loader (or one the library built around an ``IterableDataset``).
        task_names: Tasks every batch is used for.
        options: ``item_names`` for tuple batches.
    """

    def __init__(self, loader: DataLoader[Any], task_names: Sequence[str], options: LoaderOptions | None = None):
        self.loader = loader
        self.task_names = tuple(task_names)
        self._passes = _Passes(loader, (options or LoaderOptions()).item_names, "the training data")

    @property
    def exact_resume(self) -> bool:
        """Whether a run can resume mid-epoch on this loader with the same batches (an `EpochSampler`)."""
        return self._passes.sampler is not None

    def __len__(self) -> int:
        if self._passes.per_pass is None:
            raise TypeError("a stream has no length")
        return self._passes.per_pass

    def length(self) -> int | None:
        """Steps per epoch, or None for a stream."""
        return self._passes.per_pass

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """One pass of the loader; from step ``start`` when it can seek (an `EpochSampler`)."""
        del seed  # the loader's own sampler decides the order
        passes = self._passes
        passes.begin(epoch, start if self.exact_resume else 0)
        with _own_generators():
            iterator = iter(self.loader)
        for value in iterator:
            yield [(as_batch(value, passes.item_names), self.task_names)]


class MultiLoaderSteps:
    """Steps from one user ``DataLoader`` per task, the tasks of each step drawn as `TaskSchedule` says.

    A task's loader starts a new pass whenever it runs out within an epoch. Steps per epoch default as
    for `multitask.data.MultiInputLoader`, with each loader's number of batches; a stream needs
    ``steps_per_epoch``.
    """

    def __init__(
        self,
        loaders: Mapping[str, DataLoader[Any]],
        *,
        sampling: Sampling = "round_robin",
        tasks_per_step: int | None = None,
        steps_per_epoch: int | None = None,
        temperature: float | None = None,
        options: LoaderOptions | None = None,
    ) -> None:
        item_names = (options or LoaderOptions()).item_names
        self.task_names = tuple(loaders)
        self._passes = {name: _Passes(loader, item_names, f"task {name!r}") for name, loader in loaders.items()}
        lengths = {name: passes.per_pass for name, passes in self._passes.items()}
        streams = sorted(name for name, length in lengths.items() if length is None)
        if streams and steps_per_epoch is None:
            raise ConfigError(
                f"the data of task(s) {streams} is a stream without a length: set steps_per_epoch "
                "(config: training.steps_per_epoch)"
            )
        sizes = [_rows(loader, lengths[name]) for name, loader in loaders.items()]
        self.schedule = TaskSchedule(sizes, sampling, tasks_per_step, temperature)
        if steps_per_epoch is None:
            steps_per_epoch = default_steps([Fraction(length or 1) for length in lengths.values()], self.schedule)
        self.steps_per_epoch = steps_per_epoch

    @property
    def exact_resume(self) -> bool:
        """Whether every task's loader can seek (each has an `EpochSampler`)."""
        return all(passes.sampler is not None for passes in self._passes.values())

    def __len__(self) -> int:
        return self.steps_per_epoch

    def length(self) -> int:
        """Steps per epoch."""
        return self.steps_per_epoch

    def epoch(self, epoch: int, seed: int, start: int = 0) -> Iterator[Step]:
        """The steps of ``epoch`` from step ``start`` (each task's loader positioned after its earlier batches)."""
        if not self.exact_resume:
            start = 0
        generator = epoch_generator(seed, epoch)
        drawn = [self.schedule.draw(step, generator) for step in range(self.steps_per_epoch)]
        read = dict.fromkeys(self.task_names, 0)
        for tasks in drawn[:start]:
            for index in tasks:
                read[self.task_names[index]] += 1
        for name, passes in self._passes.items():
            passes.begin(epoch, read[name])
        try:
            for tasks in drawn[start:]:
                yield [(self._passes[self.task_names[i]].next(), (self.task_names[i],)) for i in tasks]
        finally:
            for passes in self._passes.values():
                passes.stop()


def _rows(loader: DataLoader[Any], length: int | None) -> int:
    """A task's size n_t for proportional and temperature sampling: the rows of its dataset when known."""
    try:
        return len(loader.dataset)  # type: ignore[arg-type]
    except TypeError:
        return (length or 1) * (loader.batch_size or 1)


class _CollateItems:
    """The collation of a stream's items: the user's ``collate_fn``, or `collate` with the item names."""

    def __init__(self, options: LoaderOptions) -> None:
        self.options = options

    def __call__(self, items: list[Any]) -> Any:
        if self.options.collate_fn is not None:
            return self.options.collate_fn(items)
        return collate(items, self.options.item_names)


def stream_loader(dataset: IterableDataset[Any], batch_size: int, options: LoaderOptions) -> DataLoader[Any]:
    """A ``DataLoader`` that batches a stream with the Trainer's batch size and options."""
    kwargs = options.data_loader_kwargs()
    return DataLoader(dataset, batch_size=batch_size, collate_fn=_CollateItems(options), **kwargs)

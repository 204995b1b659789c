"""Loading planned batches from any map-style dataset: in the calling process or in `DataLoader` worker processes.

The loaders (`SingleInputLoader`, `MultiInputLoader`) decide *which* rows each step reads; this module reads
them. A batch is requested as ``(source, rows, seed)``: the source is the dataset (a task's, for multi-input
data), the rows come from the epoch's order, a pure function of ``(seed, epoch)``, and the seed is derived
from ``(seed, epoch, step, group)``. Python's, NumPy's and PyTorch's global generators are seeded with it
while the batch is read, in whichever process reads it, so a random augmentation draws the same numbers with
0 or 8 workers, and a resumed run replays the same augmented batches. In the calling process the generators
are restored afterwards, so reading data never shifts the training's own random stream (dropout, say).

`ArrayDataset` (and `LazyDataset`) keep their fast path: a batch is one slice of each column, never a list
of per-row dictionaries, unless a per-sample transform has to see the rows; an in-memory `ArrayDataset`
without a transform is sliced in the training process even when workers are configured (only a
`LazyDataset`'s files, a user's dataset or a transform are worth a worker).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, default_collate, get_worker_info

from multitask.data._dataset import ArrayDataset, Batch
from multitask.data._lazy import LazyDataset
from multitask.errors import ConfigError, DataError

#: A per-sample transform: one sample ``{column: tensor}`` in, one out (e.g. a random flip of ``"x"``).
Transform = Callable[[dict[str, Tensor]], dict[str, Tensor]]
#: What a batch can be read from: a column table, or any map-style ``torch.utils.data.Dataset`` of dict items.
Source = ArrayDataset | Dataset[Any]


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The random source of one epoch's data order, derived from the run's seed and the epoch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def batch_seed(seed: int, epoch: int, step: int, group: int = 0) -> int:
    """The seed of the batch read for ``group`` of ``step`` in ``epoch``: a 63-bit hash of the four numbers."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{step}/{group}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True)
class LoaderOptions:
    """How the Trainer reads map-style datasets: worker processes, pinning, collation, transforms.

    With ``num_workers=0`` (the default) batches are read in the training process; otherwise a
    ``torch.utils.data.DataLoader`` reads the library's planned batches in that many processes, so that
    decoding images or tokenising text overlaps with training. The batches, their order and their random
    augmentation are the same for every ``num_workers`` (each batch is read under a seed derived from
    ``(seed, epoch, step)``).

    Args:
        num_workers: Worker processes (``DataLoader(num_workers=...)``).
        pin_memory: Page-locked batches, for faster copies to a GPU.
        prefetch_factor: Batches each worker reads ahead (None: PyTorch's default, 2); needs workers.
        persistent_workers: Keep the workers between epochs; needs workers.
        collate_fn: Turns a list of dataset items into a batch ``{column: tensor}``; default
            `multitask.data.collate` (``torch.utils.data.default_collate`` on dict items).
        item_names: Names of the parts of tuple items, e.g. ``("x", "digit", "parity")`` for a dataset
            whose items are ``(image, digit, parity)``; None when items are dicts.
        train_transform: A per-sample transform applied to *training* batches only (random augmentation);
            validation, test and prediction rows are read as they are.

    Raises:
        ConfigError: A negative worker count, prefetching or persistent workers without workers, a
            non-positive ``prefetch_factor``, empty or repeated ``item_names``.
    """

    num_workers: int = 0
    pin_memory: bool = False
    prefetch_factor: int | None = None
    persistent_workers: bool = False
    collate_fn: Callable[[list[Any]], Any] | None = None
    item_names: tuple[str, ...] | None = None
    train_transform: Transform | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ConfigError(f"num_workers must be a non-negative integer; got {self.num_workers!r}")
        if self.prefetch_factor is not None and self.prefetch_factor < 1:
            raise ConfigError(f"prefetch_factor must be at least 1; got {self.prefetch_factor}")
        if self.num_workers == 0 and (self.prefetch_factor is not None or self.persistent_workers):
            raise ConfigError("prefetch_factor and persistent_workers need worker processes: set num_workers > 0")
        if self.item_names is not None:
            names = tuple(self.item_names)
            if not names or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
                raise ConfigError(f"item_names must be distinct non-empty column names; got {self.item_names!r}")
            object.__setattr__(self, "item_names", names)

    def data_loader_kwargs(self) -> dict[str, Any]:
        """The matching ``torch.utils.data.DataLoader`` keyword arguments."""
        kwargs: dict[str, Any] = {"num_workers": self.num_workers, "pin_memory": self.pin_memory}
        if self.num_workers > 0:
            kwargs["persistent_workers"] = self.persistent_workers
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        return kwargs


class EpochSampler(Sampler[int]):
    """Row indices in the library's epoch order: a permutation that is a pure function of ``(seed, epoch)``.

    Give it to your own ``DataLoader`` (``DataLoader(dataset, batch_size=64, sampler=EpochSampler(len(dataset)))``)
    and the Trainer can resume that loader exactly: it calls `set_epoch` before each epoch and, after a
    restart, skips the rows the interrupted epoch had already read. With ``seed`` equal to the Trainer's,
    the order is the one the Trainer draws for an `ArrayDataset`.

    Args:
        num_rows: Rows in the dataset.
        seed: The order's seed.
        shuffle: A new permutation each epoch; False gives ``0 .. num_rows - 1``.

    Raises:
        DataError: ``num_rows`` is not positive.
    """

    def __init__(self, num_rows: int, seed: int = 0, shuffle: bool = True) -> None:
        if not isinstance(num_rows, int) or num_rows <= 0:
            raise DataError(f"EpochSampler needs a positive number of rows; got {num_rows!r}")
        self.num_rows, self.seed, self.shuffle = num_rows, seed, shuffle
        self.epoch, self.start, self.cycle = 0, 0, 0

    def set_epoch(self, epoch: int, start: int = 0, cycle: int = 0) -> None:
        """Draw ``epoch``'s order and begin at row position ``start`` of it.

        ``cycle`` counts how many times a task's rows were already read within the epoch (multi-input
        data revisits small tasks); each cycle gets its own permutation.
        """
        if not 0 <= start <= self.num_rows:
            raise DataError(f"EpochSampler start {start} is outside 0 .. {self.num_rows}")
        self.epoch, self.start, self.cycle = epoch, start, cycle

    def order(self) -> Tensor:
        """The full permutation of the current epoch (and cycle)."""
        if not self.shuffle:
            return torch.arange(self.num_rows)
        if self.cycle == 0:
            generator = epoch_generator(self.seed, self.epoch)
        else:
            generator = torch.Generator().manual_seed(batch_seed(self.seed, self.epoch, self.cycle, -1))
        return torch.randperm(self.num_rows, generator=generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start :].tolist())

    def __len__(self) -> int:
        return self.num_rows - self.start


def collate(items: Sequence[Any] | Mapping[str, Any], item_names: Sequence[str] | None = None) -> Batch:
    """A batch ``{column: tensor}`` from dataset items (dicts, or tuples named by ``item_names``).

    A mapping passes through (an `ArrayDataset` returns whole batches); a list of items is collated by
    ``torch.utils.data.default_collate`` (numbers become tensors, tensors are stacked).

    Raises:
        DataError: Tuple items without ``item_names``, a tuple of the wrong length, an item that is
            neither, or a column that does not collate into one tensor (strings, ragged shapes).
    """
    if isinstance(items, Mapping):
        return _tensor_columns(dict(items))
    named = [name_item(item, item_names) for item in items]
    if not named:
        raise DataError("a batch must hold at least one item")
    try:
        batch = default_collate(named)
    except (RuntimeError, TypeError) as error:
        raise DataError(f"dataset items do not collate into one batch: {error}; resize or pad them") from None
    return _tensor_columns(batch)


def name_item(item: Any, item_names: Sequence[str] | None) -> dict[str, Any]:
    """One dataset item as ``{column: value}``: a mapping as it is, a tuple zipped with ``item_names``."""
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple | list):
        if item_names is None:
            raise DataError(
                f"dataset items are {type(item).__name__}s of {len(item)} parts: name the parts, e.g. "
                f"LoaderOptions(item_names=('x', 'label')) (config: training.item_names), or return dicts"
            )
        if len(item) != len(item_names):
            raise DataError(f"a dataset item has {len(item)} parts but item_names names {len(item_names)}")
        return dict(zip(item_names, item, strict=True))
    raise DataError(f"dataset items must be dicts of tensors or numbers (or named tuples); got {type(item).__name__}")


def _tensor_columns(batch: Any) -> Batch:
    if not isinstance(batch, Mapping):
        raise DataError(f"a batch must be a mapping {{column: tensor}}; the collate_fn returned {type(batch).__name__}")
    result: Batch = {}
    for key, value in batch.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, Tensor):
            kind = type(value[0]).__name__ if isinstance(value, list | tuple) and value else type(value).__name__
            raise DataError(
                f"batch column {key!r} holds {kind} values, not numbers: encode it as tensors in the dataset "
                "(e.g. token ids), or drop it"
            )
        result[str(key)] = value
    return result


def as_batch(value: Any, item_names: Sequence[str] | None) -> Batch:
    """A batch from a user's DataLoader: a mapping, or a tuple of columns named by ``item_names``."""
    if isinstance(value, tuple | list) and not isinstance(value, Mapping):
        return _tensor_columns(name_item(value, item_names))
    return _tensor_columns(value)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and PyTorch's CPU generators; in the training process, restore them afterwards."""
    in_worker = get_worker_info() is not None
    saved = None if in_worker else (random.getstate(), np.random.get_state(), torch.default_generator.get_state())
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        if saved is not None:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.default_generator.set_state(saved[2])


class Request(NamedTuple):
    """One planned batch: ``rows`` of dataset ``source`` (a task name; ``""`` for single-input data)."""

    source: str
    rows: Tensor | slice
    seed: int


def is_map_dataset(value: object) -> bool:
    """Whether ``value`` is a map-style dataset the loaders can index (an `ArrayDataset` or a sized ``Dataset``)."""
    if isinstance(value, ArrayDataset):
        return True
    if isinstance(value, IterableDataset) or not isinstance(value, Dataset):
        return False
    try:
        return len(value) > 0  # type: ignore[arg-type]
    except TypeError:
        return False


def source_length(source: Source) -> int:
    """Rows in a map-style source."""
    return len(source)  # type: ignore[arg-type]


class _Reader(Dataset[Batch]):
    """Reads requested batches; a ``DataLoader`` over it with `_Requests` as batch sampler runs it in workers."""

    def __init__(self, sources: Mapping[str, Source], options: LoaderOptions, transform: Transform | None) -> None:
        self.sources, self.options, self.transform = dict(sources), options, transform

    def __len__(self) -> int:
        return sum(source_length(source) for source in self.sources.values())

    def __getitem__(self, index: int) -> Batch:  # pragma: no cover - the fetcher calls __getitems__
        raise TypeError("read through __getitems__ with a Request")

    def __getitems__(self, request: Request) -> Batch:
        source = self.sources[request.source]
        fast = isinstance(source, ArrayDataset) and self.transform is None
        with contextlib.nullcontext() if fast else seeded(request.seed):
            return self._read(source, request.rows)

    def _read(self, source: Source, index: Tensor | slice) -> Batch:
        if isinstance(source, ArrayDataset):
            batch = source[index]  # a slice (evaluation, in order) gives views, no copy
            if self.transform is None:
                return batch
            count = len(next(iter(batch.values())))
            rows: list[Any] = [{key: value[i] for key, value in batch.items()} for i in range(count)]
        else:
            positions = range(*index.indices(source_length(source))) if isinstance(index, slice) else index.tolist()
            rows = [source[i] for i in positions]
            rows = [name_item(row, self.options.item_names) for row in rows]
        if self.transform is not None:
            rows = [self._transformed(row) for row in rows]
        if self.options.collate_fn is not None:
            return as_batch(self.options.collate_fn(rows), self.options.item_names)
        return collate(rows)

    def _transformed(self, row: dict[str, Any]) -> dict[str, Any]:
        assert self.transform is not None
        result = self.transform(row)
        if not isinstance(result, Mapping):
            raise DataError(f"the transform must return a sample dict; it returned {type(result).__name__}")
        return dict(result)


class _Requests(Sampler[Request]):
    """The batch sampler of the reader's ``DataLoader``: this epoch's requests, in order (set before each epoch)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []

    def __iter__(self) -> Iterator[Request]:
        return iter(self.requests)

    def __len__(self) -> int:
        return len(self.requests)


def _identity(batch: Any) -> Any:
    return batch


class BatchReader:
    """Reads the batches a loader plans, in the calling process or in a ``DataLoader``'s worker processes.

    Args:
        sources: ``{name: dataset}``; single-input data has one source named ``""``.
        options: Workers, pinning, collation (`LoaderOptions`).
        transform: A per-sample transform (training only; None for evaluation).
    """

    def __init__(
        self, sources: Mapping[str, Source], options: LoaderOptions | None = None, transform: Transform | None = None
    ) -> None:
        self.options = options or LoaderOptions()
        self._reader = _Reader(sources, self.options, transform)
        # in-memory tables without a transform are sliced where they are: shipping slices through workers only costs
        in_memory = all(isinstance(s, ArrayDataset) and not isinstance(s, LazyDataset) for s in sources.values())
        self.in_process = self.options.num_workers == 0 or (in_memory and transform is None)
        self._requests = _Requests()
        self._loader: DataLoader[Batch] | None = None

    def read(self, requests: Iterable[Request]) -> Iterator[Batch]:
        """The batches of ``requests``, in order."""
        if self.in_process:
            for request in requests:
                yield self._reader.__getitems__(request)
            return
        self._requests.requests = list(requests)
        if not self._requests.requests:
            return
        if self._loader is None:
            self._loader = DataLoader(
                self._reader,
                batch_sampler=cast(Sampler[list[Any]], self._requests),  # yields Requests, read by __getitems__
                collate_fn=_identity,
                generator=torch.Generator().manual_seed(0),  # the base seed is unused: every batch is seeded
                **self.options.data_loader_kwargs(),
            )
        yield from self._loader

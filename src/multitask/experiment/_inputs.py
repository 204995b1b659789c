"""The data a config names, loaded and checked against its tasks; the encoders' input size and shape."""

from __future__ import annotations

import dataclasses

from multitask.config import ExperimentConfig, TextDataSection, TransformerEncoderConfig
from multitask.data import ArrayDataset, MultiTaskData, TabularData
from multitask.errors import ConfigError

#: What `load_data` returns: single-input splits (`TabularData`) or, for multi-input data types, `MultiTaskData`
#: with ``{task: ArrayDataset}`` splits. Both have ``train``, ``val``, ``test``, ``kinds`` and ``classes``.
ExperimentData = TabularData | MultiTaskData


def load_data(config: ExperimentConfig) -> ExperimentData:
    """The encoded splits the config names: Census-Income, CSV files, Newsgroup, the movie reviews or images.

    The data section loads them (``config.data.build(config.seed, config.tasks)``, through the dataset
    registry; with a ``transformer`` encoder, text is tokenised by the encoder's tokenizer); multi-task data
    (`MultiTaskData`) then keeps the config's tasks only, in the config's order.

    Raises:
        ConfigError: A task of the config that the data does not have, or of another kind.
    """
    encoder = config.model.encoder
    if isinstance(encoder, TransformerEncoderConfig) and isinstance(config.data, TextDataSection):
        data: ExperimentData = config.data.build(config.seed, config.tasks, tokenizer=encoder.tokenizer())
    else:
        data = config.data.build(config.seed, config.tasks)
    if isinstance(data, MultiTaskData):
        return _config_tasks(data, config)
    return data


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
        key = config.input_key
        return data.sample_shapes()[key if isinstance(key, str) else key[0]]
    return (data.num_features,)


def input_size(config: ExperimentConfig, data: ExperimentData) -> int:
    """What the encoders' input size is: the feature count of ``x``, the vocabulary size for token ids, or the
    channels of images."""
    if config.data.images:
        return input_shape(config, data)[0]
    if isinstance(config.model.encoder, TransformerEncoderConfig):  # its tokenizer's vocabulary
        return data.num_embeddings["input_ids"] if isinstance(data, MultiTaskData) else 0
    if config.data.input_key == "tokens":
        if not isinstance(data, MultiTaskData) or "tokens" not in data.num_embeddings:
            raise ConfigError(f"data type {config.data.type} gave no vocabulary size for its token ids")
        return data.num_embeddings["tokens"]
    return data.num_features

"""What every ``data`` section shares: its registry entry, how it loads, the text sections' tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from multitask import data
from multitask.config._common import StrictModel
from multitask.config._tasks import TaskConfig
from multitask.data import DatasetInfo, MultiTaskData, TabularData


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


def tabular_data(name: str, **arguments: Any) -> TabularData:
    """``multitask.data.create(name, **arguments)``, a `TabularData`."""
    loaded = data.create(name, **arguments)
    if not isinstance(loaded, TabularData):
        raise TypeError(f"dataset {name!r} gave a {type(loaded).__name__}, not TabularData")
    return loaded


def multi_task_data(name: str, **arguments: Any) -> MultiTaskData:
    """``multitask.data.create(name, **arguments)``, a `MultiTaskData`."""
    loaded = data.create(name, **arguments)
    if not isinstance(loaded, MultiTaskData):
        raise TypeError(f"dataset {name!r} gave a {type(loaded).__name__}, not MultiTaskData")
    return loaded


class TextDataSection(DataSection):
    """A data section of raw text: token ids of its own vocabulary, or a model's tokenizer's ids.

    With a ``transformer`` encoder the experiment passes the encoder's tokenizer to `build`, and the
    datasets hold ``input_ids`` and ``attention_mask`` instead of ``tokens`` and ``length``.
    """

    def build(self, seed: int, tasks: Sequence[TaskConfig], tokenizer: Any = None) -> MultiTaskData:
        """The text, tokenised by ``tokenizer`` (a Hugging Face tokenizer) or, when None, by our own vocabulary."""
        raise NotImplementedError(f"{type(self).__name__} does not build its data")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data; got {val_fraction} + {test_fraction}"
        )

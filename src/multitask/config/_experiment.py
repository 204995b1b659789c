"""The whole config, `ExperimentConfig`: its sections and the rules across them."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from pydantic import (
    Field,
    model_validator,
)

from multitask.config._analysis import AnalysisConfig, CompareConfig, LinearConfig
from multitask.config._common import Seed, StrictModel
from multitask.config._data import (
    DataConfig,
    ImageFolderDataConfig,
)
from multitask.config._data_base import TextDataSection
from multitask.config._encoders import CNNConfig, TransformerEncoderConfig
from multitask.config._model import SHARED_FEATURES, ModelConfig, readers_of
from multitask.config._strategy import StrategyConfig
from multitask.config._tasks import TaskConfig
from multitask.config._training import TrainingConfig
from multitask.layout import LINEAR, MTL, STL


class ExperimentConfig(StrictModel):
    """A whole experiment: data, tasks, model, strategy, training and the comparison to run."""

    name: str = "experiment"
    output: Path | None = None
    seed: Seed = 0
    data: DataConfig = Field(discriminator="type")
    tasks: list[TaskConfig] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    linear: LinearConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @property
    def input_key(self) -> str | tuple[str, str]:
        """The batch column(s) the models read: ``input_ids`` and ``attention_mask`` for a ``transformer``
        encoder (the data is tokenised by its tokenizer), else the data's input column (`DataSection.input_key`)."""
        if isinstance(self.model.encoder, TransformerEncoderConfig):
            return ("input_ids", "attention_mask")
        return self.data.input_key

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [task.name for task in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique; got {names}")
        self._check_tasks_of_the_data(names)
        self.strategy.check_tasks(names)
        methods = self.compare.methods
        if MTL in methods and self.model.type in methods:
            raise ValueError(f"compare.methods has both mtl and {self.model.type} (model.type): the same model twice")
        architectures = {m for m in methods if m not in (STL, MTL, LINEAR)} | (
            {self.model.type} if MTL in methods else set()
        )
        self.model.check_used(architectures)
        self._check_encoders(architectures)
        self._check_adversary(names, architectures)
        for pair in self.compare.transfer:
            missing = [name for name in pair if name not in names]
            if missing or pair[0] == pair[1]:
                raise ValueError(f"compare.transfer pair {list(pair)} must name two different tasks of {names}")
        self._check_linear()
        self._check_analysis(names, architectures)
        self._check_task_sampling(names)
        return self

    def _check_task_sampling(self, names: list[str]) -> None:
        training = self.training
        if isinstance(training.batch_size, dict):
            if not self.data.multi_input:
                raise ValueError("training.batch_size per task needs multi-input data (one dataset per task)")
            if sorted(training.batch_size) != sorted(names):
                raise ValueError(
                    f"training.batch_size must give a size for each task {names}; got {training.batch_size}"
                )
        if training.tasks_per_step is not None and training.tasks_per_step > len(names):
            raise ValueError(f"training.tasks_per_step is {training.tasks_per_step} but there are {len(names)} tasks")

    def _check_linear(self) -> None:
        """The linear method fits one loss to every task, on one table of features."""
        if LINEAR not in self.compare.methods:
            if self.linear is not None:
                raise ValueError("the linear section is read only when compare.methods has linear")
            return
        if self.data.multi_input:
            raise ValueError(
                f"compare.methods linear fits one table of features for all tasks; data type {self.data.type} "
                "gives one dataset per task"
            )
        kinds = {task.kind for task in self.tasks}
        if not kinds <= {"regression"} and not kinds <= {"binary"}:
            raise ValueError(
                f"compare.methods linear needs every task regression or every task binary (one loss for all "
                f"tasks); got {sorted(kinds)}"
            )

    def _check_analysis(self, names: list[str], architectures: Collection[str]) -> None:
        """What the seeds, the trade-off sweep and the grouping need of the tasks and the compared methods."""
        analysis = self.analysis
        if analysis.seeds is not None and (STL not in self.compare.methods or not architectures):
            raise ValueError(
                "analysis.seeds judges multi-task models against single-task ones: compare.methods needs stl and "
                "at least one multi-task method"
            )
        if analysis.affinity_every is not None and not architectures:
            raise ValueError("analysis.affinity_every measures multi-task runs, and compare.methods trains none")
        if analysis.pareto is not None:
            if not 2 <= len(names) <= 3:
                raise ValueError(f"analysis.pareto sweeps two or three tasks; the config has {len(names)}")
            if analysis.pareto.resolution < len(names):
                raise ValueError(
                    f"analysis.pareto.resolution must be at least the number of tasks ({len(names)}): preference "
                    f"vectors have entries k/resolution with k ≥ 1; got {analysis.pareto.resolution}"
                )
            unknown = [task for task in analysis.pareto.metric if task not in names]
            if unknown:
                raise ValueError(f"analysis.pareto.metric names unknown task(s) {unknown}; tasks are {names}")
        groups = analysis.groups
        if groups is not None:
            if len(names) < 2 or groups.num_groups > len(names):
                raise ValueError(
                    f"analysis.groups.num_groups must be from 1 to the number of tasks ({len(names)}); "
                    f"got {groups.num_groups}"
                )
            if groups.source == "lookahead" and not architectures:
                raise ValueError("analysis.groups reads the multi-task run's affinity, and compare.methods trains none")
            if groups.source == "pairwise" and len(names) > 8:
                raise ValueError(f"analysis.groups.source pairwise trains every pair: at most 8 tasks ({len(names)})")

    def _check_tasks_of_the_data(self, names: list[str]) -> None:
        """Task names among the dataset's (where they are known before reading it); its tasks' kind and labels."""
        info = self.data.info
        arguments = {name: getattr(self.data, name) for name in info.task_arguments if hasattr(self.data, name)}
        declared = info.known_tasks(arguments)
        if declared is not None:
            known = tuple(declared)
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(f"{self.data.type} has tasks {', '.join(known)}; unknown: {', '.join(unknown)}")
        self._check_dense_tasks()
        if isinstance(self.data, ImageFolderDataConfig):
            for index, task in enumerate(self.tasks):
                if task.column is not None or task.positive is not None:
                    raise ValueError(
                        f"tasks[{index}]: each image_folder task reads the CSV column of its name (binary: 0/1 or "
                        "two values, the later one in sorted order is 1): leave column and positive out"
                    )
        if not self.data.multi_input:
            return
        kinds = info.tasks or {}
        for index, task in enumerate(self.tasks):
            expected = kinds.get(task.name, "binary")  # a user's files (newsgroup, movie reviews): binary labels
            if task.kind != expected:
                raise ValueError(f"tasks[{index}].kind: {task.name} of {self.data.type} is {expected}; got {task.kind}")
            if task.column is not None or task.positive is not None:
                raise ValueError(
                    f"tasks[{index}]: column and positive describe CSV label columns; {self.data.type} labels each "
                    "task's own dataset (0/1), so leave them out"
                )

    def _check_dense_tasks(self) -> None:
        """Dense tasks: the data's kinds, a ``cnn`` encoder that returns its feature maps (``readout: none``)."""
        info = self.data.info  # images' tasks have fixed kinds (their labels are classes, maps)
        fixed = info.tasks if self.data.images else None
        for index, task in enumerate(self.tasks):
            if fixed is not None and task.kind != fixed[task.name]:
                raise ValueError(f"tasks[{index}].kind: {task.name} of {self.data.type} is {fixed[task.name]}")
            if task.dense != info.dense:
                state = "per-pixel: set dense: true" if task.dense is False else "not per-pixel: leave dense out"
                raise ValueError(f"tasks[{index}].dense: the labels of {task.name} ({self.data.type}) are {state}")
            if task.dense and (task.column is not None or task.positive is not None):
                raise ValueError(f"tasks[{index}]: column and positive describe CSV label columns, not dense labels")
        dense = any(task.dense for task in self.tasks)
        encoder = self.model.encoder
        maps = isinstance(encoder, CNNConfig) and encoder.readout == "none"
        if dense and not maps:
            raise ValueError(
                "model.encoder: dense tasks read feature maps: use type cnn with readout: none (their heads are "
                "convolutions, upsampled to the input's resolution)"
            )

    def _check_encoders(self, architectures: Collection[str]) -> None:
        """Encoders that read what the data gives: feature vectors (``mlp``), token ids (``bag_of_embeddings``) or
        images (``cnn``); architectures that can read it (``mtan`` only on images)."""
        tokens = self.data.input_key == "tokens"
        images = self.data.images
        wanted = ("bag_of_embeddings", "transformer") if tokens else ("cnn",) if images else ("mlp",)
        given = {"encoder": self.model.encoder, "private": self.model.private}
        for field, encoder in given.items():
            if encoder is not None and encoder.type not in wanted:
                reads = "text (token ids)" if tokens else "images" if images else "feature vectors (column x)"
                raise ValueError(
                    f"model.{field}.type: data type {self.data.type} gives {reads}: use type {' or '.join(wanted)}"
                )
        if isinstance(self.model.encoder, TransformerEncoderConfig) and not isinstance(self.data, TextDataSection):
            raise ValueError(
                f"model.encoder.type transformer tokenises raw text with its own tokenizer; data type "
                f"{self.data.type} has none: use movie_reviews, trump_tweets or reviews_and_tweets"
            )
        if isinstance(self.model.private, TransformerEncoderConfig):
            raise ValueError(
                "model.private: a private encoder per task is an MLP or a bag of embeddings, not a transformer"
            )
        readers = readers_of("tokens" if tokens else "images" if images else "features")
        other = sorted(set(architectures) - set(readers))  # what cannot read this data's input
        if other and (tokens or images):
            raise ValueError(
                f"data type {self.data.type} gives {'token ids' if tokens else 'images'}, which "
                f"{', '.join(other)} cannot read (experts, gates or columns are MLPs over a feature vector): "
                f"train {', '.join(readers)} (model.type, compare.methods)"
            )
        if other:  # feature vectors: only the architectures that read images alone are left
            raise ValueError(
                f"{', '.join(other)} attends over the feature maps of a convolutional encoder; data type "
                f"{self.data.type} gives no images (use data type multi_mnist with model.encoder.type: cnn)"
            )
        encoder = self.model.encoder
        if isinstance(encoder, CNNConfig) and encoder.readout == "none" and "shared_private" in architectures:
            raise ValueError(
                "shared_private joins shared and private feature vectors; with model.encoder.readout none the "
                "encoder gives feature maps"
            )

    def _check_adversary(self, names: list[str], architectures: Collection[str]) -> None:
        if self.strategy.adversary is None:
            return
        if not self.data.multi_input:
            raise ValueError(
                f"strategy.adversary needs multi-input data (one dataset per task, so that each sample has a task "
                f"to predict); data type {self.data.type} gives one dataset for all tasks: use data type newsgroup "
                "or movie_reviews, or the Python API (docs/methods/adversarial.md)"
            )
        if len(names) < 2:
            raise ValueError("strategy.adversary needs at least two tasks (its discriminator tells tasks apart)")
        if not architectures:
            raise ValueError(
                "strategy.adversary applies to multi-task models only, and compare.methods trains none: add mtl"
            )
        other = sorted(set(architectures) - set(SHARED_FEATURES))
        if other:
            raise ValueError(
                f"strategy.adversary plays on the models' shared features, and {', '.join(other)} "
                f"{'has' if len(other) == 1 else 'have'} none: train {' or '.join(SHARED_FEATURES)} "
                "(model.type, compare.methods)"
            )

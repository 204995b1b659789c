"""The tasks, encoders, models and Trainer options a config describes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from multitask.adversarial import BagOfEmbeddings
from multitask.analysis import (
    GradientConflictMonitor,
    TaskAffinityMonitor,
)
from multitask.config import (
    CNNConfig,
    ExperimentConfig,
    ImageFolderDataConfig,
    LinearConfig,
)
from multitask.data import MultiTaskData, TaskInfo, Transform
from multitask.errors import ConfigError
from multitask.experiment._inputs import ExperimentData
from multitask.layout import GROUPS, LINEAR, MTL, STL
from multitask.models import MLP, ConvNet, TransformerEncoder
from multitask.studies import ModelFactory
from multitask.tasks import Task
from multitask.training import Callback, TrainerOptions
from multitask.training.progress import RunProgress

Encoder = MLP | BagOfEmbeddings | ConvNet | TransformerEncoder


def build_tasks(
    config: ExperimentConfig, data: ExperimentData, in_features: int, in_shape: Sequence[int] | None = None
) -> list[Task]:
    """One `Task` per config entry (`TaskConfig.build`), each with a head on the encoder's output.

    The data says how many outputs each task has (a multiclass task's classes; a dense task's channels) and
    suggests a dense task's loss and metrics. Heads read a feature vector or, on a ``cnn`` encoder's feature
    maps (``readout: none``), the map (``in_shape`` is one input row's ``(C, H, W)``).
    """
    encoder = config.model.encoder
    maps = isinstance(encoder, CNNConfig) and encoder.readout == "none"
    info = data.task_info if isinstance(data, MultiTaskData) else {}
    tasks = []
    for spec in config.tasks:
        suggested = info.get(spec.name)
        if spec.kind == "multiclass":
            outputs = len(data.classes[spec.name]) if spec.name in data.classes else _suggested_outputs(suggested)
        else:
            outputs = _suggested_outputs(suggested) if spec.dense else 1
        tasks.append(spec.build(in_features, outputs, in_shape, maps=maps, suggested=suggested))
    return tasks


def _suggested_outputs(info: TaskInfo | None) -> int:
    if info is None:
        raise ConfigError("the data does not say how many outputs this task has")
    return info.num_outputs


def build_encoder(config: ExperimentConfig, num_features: int, in_shape: Sequence[int] | None = None) -> Encoder:
    """The shared encoder of the config (``model.encoder``'s `build`); ``num_features`` is the input size
    (`input_size`), ``in_shape`` one input row's shape (`input_shape`; a ``cnn`` encoder needs the images'
    ``(C, H, W)``)."""
    return config.model.encoder.build(num_features, in_shape)


def build_model(
    config: ExperimentConfig, architecture: str, num_features: int, in_shape: Sequence[int] | None = None
) -> ModelFactory:
    """``tasks -> model``: the named architecture as the config's ``model`` section builds it (`ModelConfig.build`).

    ``num_features`` is the encoders' input size (`input_size`: for token ids, the vocabulary size; for
    images, the channels); ``in_shape`` one input row's shape (`input_shape`), which ``mtan`` needs to size
    its attention modules. The models read the data type's input column (``x``, or ``tokens`` for
    ``movie_reviews``) and the tasks' head sections.
    """
    heads = {task.name: task.head for task in config.tasks}
    return config.model.build(architecture, heads, num_features, in_shape, config.input_key)


def architecture_of(config: ExperimentConfig, method: str) -> str:
    """The architecture ``method`` trains (``mtl``: the ``model`` section's; STL and transfer: hard sharing)."""
    if method == MTL:
        return config.model.type
    if method == STL or method.startswith("transfer:"):
        return "hard_sharing"
    return method


def describe_methods(config: ExperimentConfig, methods: Iterable[str]) -> dict[str, str]:
    """What each method of a comparison trained, in a few words (printed under the table and in results.md).

    E.g. ``mtl``: ``"hard_sharing · weighting ew · aggregation upgrad"``; ``transfer:a->b``:
    ``"hard_sharing pretrained on a, fine-tuned on b"``; ``stl``: one model per task.
    """
    spec = config.strategy

    def with_params(name: str, params: Mapping[str, object]) -> str:
        return name + (f" ({', '.join(f'{k}={v}' for k, v in params.items())})" if params else "")

    strategy = f"weighting {with_params(spec.weighting, spec.weighting_params)}"
    if spec.aggregation is not None:
        strategy += f" · aggregation {with_params(spec.aggregation, spec.aggregation_params)}"
        if spec.aggregation_mode != "jacobian":
            strategy += f" on the {spec.aggregation_mode}"
    if spec.adversary is not None:
        strategy += " · adversarial"
    result: dict[str, str] = {}
    for method in methods:
        if method == STL:
            result[method] = "one model per task: the encoder and that task's head, trained alone"
        elif method.startswith("transfer:"):
            source, target = method.removeprefix("transfer:").split("->", 1)
            result[method] = f"hard_sharing pretrained on {source}, fine-tuned on {target}"
        elif method == LINEAR:
            result[method] = f"regularised linear model, penalty {(config.linear or LinearConfig()).penalty}"
        elif method == GROUPS:
            result[method] = f"one {config.model.type} model per recommended task group · {strategy}"
        else:
            result[method] = f"{architecture_of(config, method)} · {strategy}"
    return result


def trainer_options(config: ExperimentConfig, progress: bool | RunProgress | None = None) -> TrainerOptions:
    """The `TrainerOptions` that the config's ``training``, ``strategy`` and ``analysis`` sections set.

    The strategy is a factory (``config.strategy.build``): every Trainer built from these options gets a
    `Strategy` of its own. ``progress`` is the Trainers' ``progress`` (a `RunProgress`: every training reports
    to it).
    """
    options = config.training.trainer_options(_train_transform(config)).replace(
        strategy=config.strategy.build, engine=config.strategy.engine(), progress=progress
    )
    callbacks: list[Callback] = []  # each resets at a fresh fit and skips single-task runs, so all runs share them
    if config.analysis.conflict_every is not None:
        callbacks.append(GradientConflictMonitor(config.analysis.conflict_every))
    if config.analysis.affinity_every is not None:
        callbacks.append(TaskAffinityMonitor(config.analysis.affinity_every, lr=config.analysis.affinity_lr))
    return options.replace(callbacks=callbacks) if callbacks else options


def _train_transform(config: ExperimentConfig) -> Transform | None:
    """The data section's training-only augmentation (``data.transform``), when it has one."""
    if isinstance(config.data, ImageFolderDataConfig) and config.data.transform is not None:
        return config.data.transform.build()
    return None

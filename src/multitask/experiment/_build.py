"""The tasks, encoders, models and Trainer options a config describes."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from torch.optim import Optimizer

from multitask import models
from multitask.adversarial import BagOfEmbeddings
from multitask.analysis import (
    GradientConflictMonitor,
    TaskAffinityMonitor,
)
from multitask.config import (
    BagOfEmbeddingsConfig,
    CNNConfig,
    ExperimentConfig,
    ImageFolderDataConfig,
    LinearConfig,
    MLPConfig,
)
from multitask.data import LoaderOptions, MultiTaskData, TaskInfo, Transform
from multitask.errors import ConfigError
from multitask.experiment._inputs import ExperimentData
from multitask.models import MLP, ConvNet, ModelParts, MultiTaskModel
from multitask.studies import ModelFactory
from multitask.tasks import Task
from multitask.training import Callback, TrainerOptions
from multitask.training.progress import RunProgress

Encoder = MLP | BagOfEmbeddings | ConvNet


def build_tasks(
    config: ExperimentConfig, data: ExperimentData, in_features: int, in_shape: Sequence[int] | None = None
) -> list[Task]:
    """One `Task` per config entry, each with a head on the encoder's output.

    Heads are MLPs on a feature vector; on a ``cnn`` encoder's feature maps (``readout: none``), per-sample
    heads average the map first and dense heads are convolutions upsampled to the input's ``(H, W)``
    (``in_shape[1:]``). A dense task without its own loss or metrics takes the dataset's suggestions (NYUv2's
    normals: the cosine loss and the angle metrics).
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
        loss, metrics = spec.loss, spec.metrics
        if spec.dense:
            if in_shape is None or len(in_shape) != 3:
                raise ConfigError(f"task {spec.name}: a dense head needs the input images' (C, H, W); got {in_shape}")
            head: nn.Module = _dense_head(in_features, spec.head.hidden, outputs, in_shape[1:])
            if suggested is not None:
                loss = loss or suggested.loss
                metrics = metrics or (list(suggested.metrics) if suggested.metrics else None)
        elif maps:
            mlp = MLP(in_features, spec.head.hidden, outputs, spec.head.dropout)
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), mlp)
        else:
            head = MLP(in_features, spec.head.hidden, outputs, spec.head.dropout)
        tasks.append(Task(spec.name, head, spec.kind, loss=loss, metrics=metrics, dense=spec.dense))
    return tasks


def _suggested_outputs(info: TaskInfo | None) -> int:
    if info is None:
        raise ConfigError("the data does not say how many outputs this task has")
    return info.num_outputs


def _dense_head(in_channels: int, hidden: Sequence[int], outputs: int, size: Sequence[int]) -> nn.Sequential:
    """``[3×3 conv, ReLU] × len(hidden)``, a 1×1 convolution to ``outputs`` channels, bilinear upsampling to
    ``size``: a dense head on a feature map."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in hidden:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        channels = width
    layers += [
        nn.Conv2d(channels, outputs, 1),
        nn.Upsample(size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False),
    ]
    return nn.Sequential(*layers)


def build_encoder(config: ExperimentConfig, num_features: int, in_shape: Sequence[int] | None = None) -> Encoder:
    """The shared encoder of the config; ``num_features`` is the input size (`input_size`), ``in_shape`` one
    input row's shape (`input_shape`; a ``cnn`` encoder needs the images' ``(C, H, W)``)."""
    return _encoder(config.model.encoder, num_features, in_shape)


_Built = TypeVar("_Built")


def _refuse_huge_layers(build: Callable[..., _Built]) -> Callable[..., _Built]:
    """A layer too large to allocate (``hidden: [200000, 200000]``) is a config error naming the size, not a
    traceback from the allocator."""

    @functools.wraps(build)
    def checked(*args: Any, **kwargs: Any) -> _Built:
        try:
            return build(*args, **kwargs)
        except (RuntimeError, MemoryError, OverflowError, TypeError) as error:
            text = str(error)
            wanted = re.search(r"allocate (\d+) bytes", text)
            huge = wanted is not None or isinstance(error, MemoryError | OverflowError) or "Overflow" in text
            if not huge or (isinstance(error, TypeError) and "Overflow" not in text):
                raise
            size = (
                f"{int(wanted.group(1)):,} bytes ({int(wanted.group(1)) / 2**30:,.0f} GiB)"
                if wanted is not None
                else "more elements than a tensor can hold"
            )
            raise ConfigError(
                f"model: a layer asks for {size}, more than this machine can allocate: make the layer sizes "
                "(model.encoder hidden/channels, expert, private) smaller"
            ) from None

    return checked


@_refuse_huge_layers
def _encoder(
    spec: MLPConfig | BagOfEmbeddingsConfig | CNNConfig, num_features: int, in_shape: Sequence[int] | None = None
) -> Encoder:
    if isinstance(spec, BagOfEmbeddingsConfig):
        return BagOfEmbeddings(num_features, spec.dim, spec.hidden, dropout=spec.dropout)
    if isinstance(spec, CNNConfig):
        if in_shape is None or len(in_shape) != 3:
            raise ConfigError(f"a cnn encoder reads images [C, H, W]; the data's rows have shape {in_shape}")
        return ConvNet(
            num_features,
            spec.channels,
            kernel=spec.kernel,
            pool=spec.pool,
            batch_norm=spec.batch_norm,
            hidden=spec.hidden,
            dropout=spec.dropout,
            readout=spec.readout,
            in_size=in_shape[1:],
        )
    return MLP(num_features, spec.hidden, None, spec.dropout)


def build_model(
    config: ExperimentConfig, architecture: str, num_features: int, in_shape: Sequence[int] | None = None
) -> ModelFactory:
    """``tasks -> model``: the named architecture (`multitask.models.create`) as the config sets it up.

    ``num_features`` is the encoders' input size (`input_size`: for token ids, the vocabulary size; for
    images, the channels); ``in_shape`` one input row's shape (`input_shape`), which ``mtan`` needs to size
    its attention modules. The models read the data type's input column (``x``, or ``tokens`` for
    ``movie_reviews``). The ``model`` section gives the parts (encoder, expert, private encoder, the tasks'
    head specs) and the architecture's hyper-parameters (`multitask.models.info`).
    """
    spec = config.model
    expert_spec = spec.expert or spec.encoder
    head_specs = {task.name: task.head for task in config.tasks}

    def expert(in_features: int) -> MLP:
        if not isinstance(expert_spec, MLPConfig):
            raise ConfigError(
                f"{architecture} builds MLP experts on feature vectors; model.encoder is {expert_spec.type}"
            )
        return MLP(in_features, expert_spec.hidden, None, expert_spec.dropout)

    def head(task: Task, width: int) -> MLP:  # the config's head of ``task``, reading ``width`` features
        head_spec = head_specs[task.name]
        return MLP(width, head_spec.hidden, _out_features(task.head), head_spec.dropout)

    private_spec = spec.private or spec.encoder
    parts = ModelParts(
        encoder=lambda: build_encoder(config, num_features, in_shape),
        in_features=num_features,
        expert=expert,
        private=lambda: _encoder(private_spec, num_features, in_shape),
        head=head,
        in_shape=tuple(in_shape) if in_shape is not None else None,
        input_key=config.data.input_key,
    )
    hyperparameters = {name: getattr(spec, name) for name in models.info(architecture).hyperparameters}

    @_refuse_huge_layers
    def build(tasks: Sequence[Task]) -> MultiTaskModel:
        return models.create(architecture, tasks, parts, **hyperparameters)

    return build


def architecture_of(config: ExperimentConfig, method: str) -> str:
    """The architecture ``method`` trains (``mtl``: the ``model`` section's; STL and transfer: hard sharing)."""
    if method == "mtl":
        return config.model.type
    if method == "stl" or method.startswith("transfer:"):
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
        if method == "stl":
            result[method] = "one model per task: the encoder and that task's head, trained alone"
        elif method.startswith("transfer:"):
            source, target = method.removeprefix("transfer:").split("->", 1)
            result[method] = f"hard_sharing pretrained on {source}, fine-tuned on {target}"
        elif method == "linear":
            result[method] = f"regularised linear model, penalty {(config.linear or LinearConfig()).penalty}"
        elif method == "groups":
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
    training = config.training
    options = training.optimizer

    def make_optimizer(params: Iterable[nn.Parameter]) -> Optimizer:
        if options.name == "sgd":
            return torch.optim.SGD(params, lr=options.lr, momentum=options.momentum, weight_decay=options.weight_decay)
        cls = torch.optim.AdamW if options.name == "adamw" else torch.optim.Adam
        return cls(params, lr=options.lr, weight_decay=options.weight_decay)

    scheduler = None
    if training.scheduler is not None:
        schedule = training.scheduler

        def scheduler(optimizer: Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
            if schedule.name == "cosine":
                return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=schedule.step_size, gamma=schedule.gamma)

    result: dict[str, Any] = {
        "strategy": config.strategy.build,
        "engine": config.strategy.engine(),
        "optimizer": make_optimizer,
        "scheduler": scheduler,
        "max_epochs": training.epochs,
        "batch_size": training.batch_size,
        "eval_batch_size": training.eval_batch_size,
        "sampling": training.sampling,
        "temperature": training.temperature,
        "tasks_per_step": training.tasks_per_step,
        "steps_per_epoch": training.steps_per_epoch,
        "loading": LoaderOptions(
            num_workers=training.num_workers,
            pin_memory=training.pin_memory,
            prefetch_factor=training.prefetch_factor,
            persistent_workers=training.persistent_workers,
            train_transform=_train_transform(config),
        ),
        "grad_clip": training.grad_clip,
        "mixed_precision": training.mixed_precision,
        "patience": training.patience,
        "checkpoint_every": training.checkpoint_every,
        "on_nonfinite": training.on_nonfinite,
        "device": training.device,
        "progress": progress,
    }
    if training.monitor is not None:
        result["monitor"] = training.monitor
    callbacks: list[Callback] = []  # each resets at a fresh fit and skips single-task runs, so all runs share them
    if config.analysis.conflict_every is not None:
        callbacks.append(GradientConflictMonitor(config.analysis.conflict_every))
    if config.analysis.affinity_every is not None:
        callbacks.append(TaskAffinityMonitor(config.analysis.affinity_every, lr=config.analysis.affinity_lr))
    if callbacks:
        result["callbacks"] = callbacks
    return TrainerOptions(**result)


def _train_transform(config: ExperimentConfig) -> Transform | None:
    """The data section's training-only augmentation (``data.transform``), when it has one."""
    if isinstance(config.data, ImageFolderDataConfig) and config.data.transform is not None:
        return config.data.transform.build()
    return None


def _out_features(head: nn.Module) -> int:
    """The output width of a head the config built (an `MLP`)."""
    width = getattr(head, "out_features", None)
    if not isinstance(width, int):
        raise ConfigError(f"cannot tell the output width of head {type(head).__name__}")
    return width

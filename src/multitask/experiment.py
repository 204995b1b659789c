"""Running an experiment described by a config: build the data, tasks and models, train, compare, report."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from torch import nn
from torch.optim import Optimizer

from multitask import models
from multitask.adversarial import BagOfEmbeddings
from multitask.analysis import (
    Comparison,
    ConflictHistory,
    GradientConflictMonitor,
    ParetoFront,
    TaskAffinity,
    TaskAffinityMonitor,
    TaskGrouping,
    build_report,
    negative_transfer_from_comparisons,
    pairwise_transfer,
    pareto_sweep,
    preference_grid,
    train_groups,
)
from multitask.analysis._affinity import AFFINITY_FILE
from multitask.analysis._conflict import CONFLICT_FILE
from multitask.analysis._linear import LINEAR_FILE, LinearRun, fit_linear
from multitask.baselines import ModelFactory, compare
from multitask.config import (
    BagOfEmbeddingsConfig,
    CensusDataConfig,
    CNNConfig,
    ExperimentConfig,
    GroupsConfig,
    ImageFolderDataConfig,
    LinearConfig,
    MLPConfig,
    MovieReviewsDataConfig,
    MultiMnistDataConfig,
    NewsgroupDataConfig,
    NYUv2DataConfig,
    ParetoConfig,
    load_config,
)
from multitask.data import ArrayDataset, LoaderOptions, MultiTaskData, TabularData, TaskInfo, load_tabular
from multitask.data._pipeline import Transform
from multitask.errors import CheckpointError, ConfigError, DataError, TargetError
from multitask.models import MLP, ConvNet, ModelParts, MultiTaskModel
from multitask.tasks import Task
from multitask.training import Callback, Trainer
from multitask.training._data import Data
from multitask.training.checkpoint import list_checkpoints, load_checkpoint
from multitask.training.distributed import Distributed
from multitask.training.lock import LOCK_FILE, RunFolderLock, existing_folder, prepare_folder
from multitask.training.progress import RunProgress, progress_wanted

#: What `load_data` returns: single-input splits (`TabularData`) or, for multi-input data types, `MultiTaskData`
#: with ``{task: ArrayDataset}`` splits. Both have ``train``, ``val``, ``test``, ``kinds`` and ``classes``.
ExperimentData = TabularData | MultiTaskData
Encoder = MLP | BagOfEmbeddings | ConvNet


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
    from multitask.data._mnist import FASHION_MNIST_DIR, load_multi_fashion, load_multi_mnist

    split_seed = spec.seed if spec.seed is not None else seed
    if spec.variant == "fashion":
        root = spec.root or FASHION_MNIST_DIR
        return load_multi_fashion(root=root, val_fraction=spec.val_fraction, seed=split_seed, limit=spec.limit)
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


def _architecture(config: ExperimentConfig, method: str) -> str:
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
            result[method] = f"{_architecture(config, method)} · {strategy}"
    return result


def trainer_options(config: ExperimentConfig, progress: bool | RunProgress | None = None) -> dict[str, Any]:
    """Keyword arguments of `Trainer` that the config's ``training`` and ``strategy`` sections set.

    ``progress`` is passed on as the Trainers' ``progress`` (a `RunProgress`: every training reports to it).
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
        "strategy": config.strategy.strategy(),
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
    return result


def _train_transform(config: ExperimentConfig) -> Transform | None:
    """The data section's training-only augmentation (``data.transform``), when it has one."""
    if isinstance(config.data, ImageFolderDataConfig) and config.data.transform is not None:
        return config.data.transform.build()
    return None


def output_dir(config: ExperimentConfig, output: str | Path | None = None) -> Path:
    """Where the run is written: ``output``, else the config's ``output``, else ``runs/NAME``."""
    if output is not None:
        return Path(output)
    return config.output if config.output is not None else Path("runs") / config.name


def planned_trainings(config: ExperimentConfig) -> int:
    """How many trainings (`Trainer.fit` calls) `run_experiment` makes for ``config``: the total of its progress.

    Per seed (each of ``analysis.seeds``, else one): one per task for ``stl``, one for ``mtl`` and for
    each architecture of ``compare.methods`` (``linear`` fits no Trainer), two per ``compare.transfer``
    pair (pre-training and fine-tuning); ``analysis.groups``: ``num_groups`` per seed (the most groups
    the grouping may have; `run_experiment` corrects the plan once the grouping is known) and, with
    ``source: pairwise``, once ``T`` single-task and ``T(T-1)/2`` pair trainings; ``analysis.pareto``:
    once, one per sweep method and preference vector (`preference_grid`).
    """
    tasks = len(config.tasks)
    per_seed = sum(tasks if method == "stl" else 0 if method == "linear" else 1 for method in config.compare.methods)
    per_seed += 2 * len(config.compare.transfer)
    analysis = config.analysis
    seeds = len(analysis.seeds) if analysis.seeds else 1
    count = seeds * per_seed
    if analysis.groups is not None:
        count += seeds * analysis.groups.num_groups
        if analysis.groups.source == "pairwise":
            count += tasks + tasks * (tasks - 1) // 2
    pareto = analysis.pareto
    if pareto is not None:  # the config has checked that the sweep can run (2-3 tasks, resolution >= T)
        count += len(pareto.methods) * len(preference_grid(tasks, pareto.resolution))
    return count


def run_experiment(
    config: ExperimentConfig,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | RunProgress | None = None,
) -> Comparison:
    """Train every method the config asks for and write the run folder; returns the comparison.

    The folder gets ``config.yaml`` (the validated config), one sub-folder per method with its
    checkpoints, metrics and curves, and ``results.csv``, ``results.md``, ``comparison.png``. With
    ``analysis.seeds`` every seed's runs go to ``seed-N/`` (each such a folder), the top-level results
    are the means over the seeds and ``negative_transfer/METHOD/`` holds each multi-task method's
    verdicts against the single-task models. ``analysis.groups`` adds the method ``groups`` (the
    recommended task groups, ``groups/`` in each seed's folder); ``analysis.pareto`` adds ``pareto/``
    (the trade-off sweep, on the first seed).

    ``progress``: True draws the run's progress (`RunProgress`: model i of `planned_trainings`, its
    epoch and step, the run's ETA, one summary line per finished model), None does so on a terminal
    outside CI and otherwise writes only the summary lines to the ``multitask`` logger (INFO), False
    shows nothing; a `RunProgress` of your own is used as it is (its unset ``total``, ``name`` and
    ``root`` filled in). Under torchrun only rank 0 shows progress.

    Raises:
        ConfigError: The folder already holds a run and neither ``resume`` nor ``overwrite`` is set, or the
            data lacks a task of the config.
        DataError: The data cannot be read. Data errors come before anything is written to the folder.
    """
    directory = output_dir(config, output)
    saved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    _check_run_dir(directory, saved, resume, overwrite)
    shown: RunProgress | None = None  # only rank 0 (torchrun sets RANK) shows progress
    if isinstance(progress, RunProgress):
        shown = progress
        shown.total = shown.total if shown.total is not None else planned_trainings(config)
        shown.name = shown.name if shown.name is not None else config.name
        shown.root = shown.root if shown.root is not None else directory
    elif progress is not False and os.environ.get("RANK", "0") == "0":
        bars = bool(progress) or progress_wanted()
        shown = RunProgress(planned_trainings(config), config.name, root=directory, bars=bars)
    try:
        return _run_experiment(config, directory, saved, resume, overwrite, shown)
    finally:
        if shown is not None and shown is not progress:
            shown.close()


def _run_experiment(
    config: ExperimentConfig,
    directory: Path,
    saved: str,
    resume: bool,
    overwrite: bool,
    progress: RunProgress | None,
) -> Comparison:
    """`run_experiment` once the run folder is checked, with its progress (None: none)."""
    _status(progress, "loading data")
    data = load_data(config)  # before the folder is written: a data error leaves no half-made run
    distributed = Distributed.from_environment()  # under torchrun: rank 0 prepares the folder, the others wait
    analysis, methods = config.analysis, config.compare.methods
    if distributed is not None and (analysis.seeds or analysis.pareto or analysis.groups or "linear" in methods):
        raise ConfigError(
            "analysis.seeds, analysis.pareto, analysis.groups and the linear method run on one process only (not "
            "under torchrun or --nproc yet): train them without --nproc"
        )
    lock = RunFolderLock(directory)
    if distributed is None or distributed.is_main:  # one writer: the lock before anything is written
        lock.acquire()
    try:
        if distributed is None:
            _prepare_run_dir(directory, saved, resume, overwrite)
        else:
            distributed.run_on_main(_prepare_run_dir, directory, saved, resume, overwrite)
        return _run_all(config, data, directory, resume, progress, distributed)
    finally:
        lock.release()


def _run_all(
    config: ExperimentConfig,
    data: ExperimentData,
    directory: Path,
    resume: bool,
    progress: RunProgress | None,
    distributed: Distributed | None,
) -> Comparison:
    """`run_experiment` once the run folder is prepared and locked."""
    analysis = config.analysis
    runs = _Runs(config, data, resume, progress)
    seeds = analysis.seeds or [config.seed]
    folders = {seed: directory / f"seed-{seed}" if analysis.seeds else directory for seed in seeds}
    comparisons = {seed: runs.compare(seed, folder) for seed, folder in folders.items()}
    if analysis.groups is not None:
        _status(progress, "choosing the task groups")
        grouping = runs.grouping(analysis.groups, folders[seeds[0]])
        if progress is not None:  # the plan counted num_groups per seed, the most there can be
            progress.add_planned(len(seeds) * (len(grouping.groups) - analysis.groups.num_groups))
        for seed, folder in folders.items():
            comparisons[seed] = runs.train_groups(grouping, seed, folder, comparisons[seed])
    comparison = comparisons[seeds[0]]
    if analysis.seeds:
        _status(progress, "judging negative transfer")
        comparison = Comparison.mean(list(comparisons.values()))
        comparison.write(directory)
        _judge_transfer(config, list(comparisons.values()), directory, folders[seeds[0]])
    if analysis.pareto is not None:
        runs.pareto(analysis.pareto, seeds[0], directory / "pareto", comparisons[seeds[0]])
    if analysis.report and (distributed is None or distributed.is_main):
        _status(progress, "writing the report")
        build_report(directory)  # after the results are written: a report problem loses no result
    return comparison


def _status(progress: RunProgress | None, text: str) -> None:
    """Show ``text`` as what the run is doing (see `RunProgress.status`), when it shows progress."""
    if progress is not None:
        progress.status(text)


class _Runs:
    """The trainings of one config: its methods for a seed, the task groups and the trade-off sweep."""

    def __init__(
        self, config: ExperimentConfig, data: ExperimentData, resume: bool, progress: RunProgress | None
    ) -> None:
        self.config, self.data, self.resume = config, data, resume
        _status(progress, "building models")
        self.size = input_size(config, data)
        self.shape = input_shape(config, data)
        self.encoder = build_encoder(config, self.size, self.shape)
        self.tasks = build_tasks(config, data, self.encoder.out_features, self.shape)
        self.options = trainer_options(config, progress if progress is not None else False)

    def compare(self, seed: int, folder: Path) -> Comparison:
        """Every method of ``compare.methods`` (and the transfer runs) with ``seed``, written to ``folder``."""
        config = self.config
        methods = config.compare.methods
        model = self._model()
        architectures: dict[str, ModelFactory] = {
            m: build_model(config, m, self.size, self.shape) for m in methods if m not in ("stl", "mtl", "linear")
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            comparison = compare(
                self.encoder,
                self.tasks,
                self.data.train,
                self.data.val,
                self.data.test,
                methods=[m for m in methods if m in ("stl", "mtl")],
                model=model,
                architectures=architectures,
                transfer=config.compare.transfer,
                freeze_encoder=config.compare.freeze_encoder,
                input_key=config.data.input_key,
                seed=seed,
                run_dir=folder,
                resume=self.resume,
                **self.options,
            )
        later = ["linear"] if "linear" in methods else []  # rows added after the trainings
        later += ["groups"] if config.analysis.groups is not None else []
        described = [*comparison.methods, *later]
        comparison = dataclasses.replace(comparison, descriptions=describe_methods(config, described))
        if "linear" in methods:
            return self._with_linear(comparison, folder)  # writes the folder's results again, with the linear row
        comparison.write(folder)  # the descriptions join results.md and comparison.json
        return comparison

    def _with_linear(self, comparison: Comparison, folder: Path) -> Comparison:
        """``comparison`` with the method ``linear`` (`fit_linear`; ``folder/linear``)."""
        spec = self.config.linear or LinearConfig()
        if not isinstance(self.data, TabularData):
            raise ConfigError(f"compare.methods linear needs one table of features; got {self.data.name}")
        run = fit_linear(
            spec.penalty,
            self.tasks,
            self.data.train,
            self.data.test if self.data.test is not None else self.data.val,
            params=spec.params,
            feature_names=self.data.feature_names,
            num_clusters=spec.clusters,
            input_key=self.config.data.input_key,
            run_dir=folder / "linear",
        )
        return self._merged(comparison, "linear", run.test, run.seconds, folder)

    @staticmethod
    def _merged(
        comparison: Comparison, method: str, results: dict[str, dict[str, float]], seconds: float, folder: Path
    ) -> Comparison:
        """``comparison`` with one more method's test results, written again to ``folder``."""
        merged = dataclasses.replace(
            comparison,
            results=comparison.results | {method: results},
            seconds=(comparison.seconds or {}) | {method: seconds},
        )
        merged.write(folder)
        return merged

    def _model(self) -> ModelFactory | None:
        """The ``model`` section's architecture (None: hard sharing of the encoder, the baselines' default)."""
        architecture = self.config.model.type
        return None if architecture == "hard_sharing" else build_model(self.config, architecture, self.size, self.shape)

    def _plain_options(self) -> dict[str, Any]:
        """The trainer options without the analysis monitors (extra runs are not monitored)."""
        return {key: value for key, value in self.options.items() if key != "callbacks"}

    def grouping(self, spec: GroupsConfig, folder: Path) -> TaskGrouping:
        """The recommended groups: from the multi-task run's look-ahead affinity, or from pair trainings."""
        if spec.source == "pairwise":
            options = self._plain_options()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                affinity = pairwise_transfer(
                    self.encoder,
                    self.tasks,
                    self.data.train,
                    self.data.val if self.data.val is not None else self.data.test,
                    input_key=self.config.data.input_key,
                    seed=self.config.seed,
                    **options,
                )
            (folder / "groups").mkdir(parents=True, exist_ok=True)
            affinity.write(folder / "groups" / AFFINITY_FILE)
            affinity.plot(folder / "groups" / "affinity.png")
        else:
            methods = [m for m in self.config.compare.methods if m != "stl"]
            path = folder / ("mtl" if "mtl" in methods else methods[0]) / AFFINITY_FILE
            if not path.is_file():
                raise DataError(f"no task affinity at {path}: the multi-task run sampled none (lower affinity_every)")
            affinity = TaskAffinity.read(path)
        return affinity.group(spec.num_groups, overlap=spec.overlap)

    def train_groups(self, grouping: TaskGrouping, seed: int, folder: Path, comparison: Comparison) -> Comparison:
        """``comparison`` with the method ``groups``: one model per recommended group (``folder/groups``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            groups = train_groups(
                self.encoder,
                self.tasks,
                grouping,
                self.data.train,
                self.data.val,
                self.data.test,
                include=(),
                input_key=self.config.data.input_key,
                seed=seed,
                run_dir=folder / "groups",
                resume=self.resume,
                **self._plain_options(),
            )
        return self._merged(comparison, "groups", groups.results["groups"], (groups.seconds or {})["groups"], folder)

    def pareto(self, spec: ParetoConfig, seed: int, folder: Path, comparison: Comparison) -> ParetoFront:
        """The trade-off sweep with the ``model`` section's architecture; the compared methods as single points."""
        config = self.config
        chosen = {task.name: spec.metric.get(task.name, task.main_metric) for task in self.tasks}
        others = {
            method: {
                task: per_task[task][metric] for task, metric in chosen.items() if metric in per_task.get(task, {})
            }
            for method, per_task in comparison.results.items()
        }
        model = self._model()
        options = {key: value for key, value in self._plain_options().items() if key != "strategy"}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return pareto_sweep(
                self.encoder,
                self.tasks,
                self.data.train,
                self.data.val,
                self.data.test,
                methods=spec.methods,
                resolution=spec.resolution,
                metric=chosen,
                stch_options={"mu": spec.mu} if spec.mu is not None else None,
                model=model,
                others={m: v for m, v in others.items() if len(v) == len(chosen)},
                input_key=config.data.input_key,
                seed=seed,
                run_dir=folder,
                resume=self.resume,
                **options,
            )


def _judge_transfer(config: ExperimentConfig, comparisons: list[Comparison], directory: Path, first: Path) -> None:
    """``negative_transfer/METHOD/``: each multi-task method against the single-task models, task by task."""
    analysis = config.analysis
    methods = [m for m in comparisons[0].methods if m != comparisons[0].baseline and not m.startswith("transfer:")]
    for method in methods:
        conflict_path, affinity_path = first / method / CONFLICT_FILE, first / method / AFFINITY_FILE
        report = negative_transfer_from_comparisons(
            comparisons,
            method=method,
            confidence=analysis.confidence,
            interval=analysis.interval,
            conflict=ConflictHistory.read(conflict_path) if conflict_path.is_file() else None,
            affinity=TaskAffinity.read(affinity_path) if affinity_path.is_file() else None,
        )
        target = directory / "negative_transfer" / method
        target.mkdir(parents=True, exist_ok=True)
        report.write(target)


def _holds_a_run(directory: Path) -> bool:
    """Whether the run folder holds anything but its lock file."""
    return existing_folder(directory) and any(entry.name != LOCK_FILE for entry in directory.iterdir())


def _check_run_dir(directory: Path, saved: str, resume: bool, overwrite: bool) -> None:
    """Raise unless the run folder may be used as ``resume``/``overwrite`` say (reads only)."""
    if _holds_a_run(directory) and not resume and not overwrite:
        raise ConfigError(f"{directory} already holds a run: pass --resume to continue it, or --output/--overwrite")
    previous = directory / "config.yaml"
    if resume and previous.is_file() and previous.read_text() != saved:
        raise ConfigError(
            f"{directory} was trained with a different config ({previous}); resume it with that config, "
            "or start a new run with --output or --overwrite"
        )


def _prepare_run_dir(directory: Path, saved: str, resume: bool, overwrite: bool) -> None:
    """Check the run folder against ``resume``/``overwrite``, then create it holding ``config.yaml``."""
    _check_run_dir(directory, saved, resume, overwrite)
    if _holds_a_run(directory) and not resume:  # overwrite: everything but the lock this run holds
        for entry in directory.iterdir():
            if entry.name != LOCK_FILE:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    prepare_folder(directory)
    (directory / "config.yaml").write_text(saved)


@dataclass(frozen=True)
class _SavedModel:
    method: str
    path: Path
    task_names: tuple[str, ...]
    architecture: str | None = None  # None: the method's (`_architecture`)
    serves: tuple[str, ...] | None = None  # the tasks reported from this model (None: all of task_names)


def _saved_models(directory: Path, config: ExperimentConfig) -> list[_SavedModel]:
    names = tuple(task.name for task in config.tasks)
    found = []
    if (directory / "stl").is_dir():
        found += [_SavedModel("stl", directory / "stl" / name / "model.pt", (name,)) for name in names]
    for method in config.compare.methods:
        if method not in ("stl", "linear") and (directory / method).is_dir():
            found.append(_SavedModel(method, directory / method / "model.pt", names))
    for source, target in config.compare.transfer:
        path = directory / f"transfer-{source}-to-{target}" / "finetune" / "model.pt"
        if path.parent.is_dir():
            found.append(_SavedModel(f"transfer:{source}->{target}", path, (target,)))
    return found + _saved_groups(directory / "groups")


def _saved_groups(directory: Path) -> list[_SavedModel]:
    """The models of `train_groups` (``groups/group-N/``), each reporting the tasks its group serves."""
    if not (directory / "grouping.json").is_file():
        return []
    grouping = json.loads((directory / "grouping.json").read_text())
    found = []
    for number, group in enumerate(grouping["groups"]):
        members = tuple(group)
        serves = tuple(name for name in members if tuple(grouping["assignment"][name]) == members)
        folder = directory / f"group-{number}"
        path = folder / members[0] / "model.pt" if len(members) == 1 else folder / "model.pt"  # a lone task: STL
        if serves:
            found.append(_SavedModel("groups", path, members, "hard_sharing", serves))
    return found


def evaluate_run(run_dir: str | Path, split: str = "test") -> Comparison:
    """Re-evaluate the models saved in a run folder on ``split`` (``"test"`` or ``"val"``).

    A run with ``analysis.seeds`` is evaluated seed by seed (``seed-N/``) and the means are returned,
    as ``multitask train`` reports them.
    """
    directory = Path(run_dir)
    if not (directory / "config.yaml").is_file():
        raise ConfigError(f"{directory} is not a run folder (no config.yaml); give the folder `multitask train` wrote")
    config = load_config(directory / "config.yaml")
    data = load_data(config)
    dataset = data.test if split == "test" else data.val
    if dataset is None:
        raise ConfigError(f"the run's data has no {split} split")
    size, shape = input_size(config, data), input_shape(config, data)
    encoder = build_encoder(config, size, shape)
    all_tasks = {task.name: task for task in build_tasks(config, data, encoder.out_features, shape)}
    seeds = config.analysis.seeds
    folders = [directory / f"seed-{seed}" for seed in seeds] if seeds else [directory]
    comparisons = [_evaluate_folder(folder, config, dataset, all_tasks, size, shape) for folder in folders]
    return comparisons[0] if len(comparisons) == 1 else Comparison.mean(comparisons)


def _evaluate_folder(
    directory: Path,
    config: ExperimentConfig,
    dataset: Data,
    all_tasks: Mapping[str, Task],
    size: int,
    shape: tuple[int, ...],
) -> Comparison:
    """The saved models of one run folder (one seed's) evaluated on ``dataset``, each rebuilt on ``all_tasks``."""
    saved = _saved_models(directory, config)
    linear_file = directory / "linear" / LINEAR_FILE
    if not saved and not linear_file.is_file():
        raise CheckpointError(
            f"{directory} holds no trained model (stl/, mtl/, an architecture's folder or transfer-*/)"
        )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for entry in saved:
        if not entry.path.is_file():
            partial = list_checkpoints(entry.path.parent / "checkpoints")
            hint = " (training did not finish: run `multitask train CONFIG --resume`)" if partial else ""
            raise CheckpointError(f"missing {entry.path}{hint}")
        tasks = [all_tasks[name] for name in entry.task_names]
        model = build_model(config, entry.architecture or _architecture(config, entry.method), size, shape)(tasks)
        _load_weights(model, entry.path)
        trainer = Trainer(model, tasks, progress=False, device=config.training.device)
        evaluation = trainer.evaluate(_of_tasks(dataset, entry.task_names))
        serves = entry.serves or entry.task_names
        per_task = results.setdefault(entry.method, {})
        served = {t: ms for t, ms in evaluation.items() if t in serves}
        per_task.update({t: {m: v for m, v in ms.items() if m != "loss"} for t, ms in served.items()})
    if linear_file.is_file():
        linear = LinearRun.read(linear_file)
        results["linear"] = linear.evaluate(dataset, [all_tasks[name] for name in linear.task_names])
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in all_tasks.values()}
    return Comparison(results, directions)


def _load_weights(model: nn.Module, path: Path) -> None:
    """``model``'s weights from the saved ``model.pt`` at ``path``.

    Raises:
        CheckpointError: The file is not one (`load_checkpoint`), or holds something other than this model's
            weights (another architecture, other layer sizes, not a state dictionary); the message names it.
    """
    state = load_checkpoint(path).get("model")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no model weights (its 'model' entry is {type(state).__name__})")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} does not hold this config's {type(model).__name__} ({first[:150]}): was the run trained with "
            "another config?"
        ) from None


def _of_tasks(dataset: Data, names: Sequence[str]) -> Data:
    """Multi-input data (``{task: dataset}``) cut to the datasets of ``names``; one dataset for all tasks as is."""
    if isinstance(dataset, Mapping) and all(isinstance(value, ArrayDataset) for value in dataset.values()):
        return {name: dataset[name] for name in names if name in dataset}
    return dataset


def _out_features(head: nn.Module) -> int:
    """The output width of a head the config built (an `MLP`)."""
    width = getattr(head, "out_features", None)
    if not isinstance(width, int):
        raise ConfigError(f"cannot tell the output width of head {type(head).__name__}")
    return width

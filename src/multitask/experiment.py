"""Running an experiment described by a config: build the data, tasks and models, train, compare, report."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.optim import Optimizer

from multitask.analysis import Comparison
from multitask.baselines import ModelFactory, compare
from multitask.config import CensusDataConfig, ExperimentConfig, load_config
from multitask.data._tabular import TabularData, load_tabular
from multitask.errors import CheckpointError, ConfigError
from multitask.models import (
    MLP,
    PLE,
    CoupledNetworks,
    CrossStitch,
    DSelectK,
    HardSharing,
    MMoE,
    MultiTaskModel,
    SoftSharing,
)
from multitask.tasks import Task
from multitask.training import Trainer
from multitask.training.checkpoint import list_checkpoints, load_checkpoint
from multitask.training.distributed import Distributed


def load_data(config: ExperimentConfig) -> TabularData:
    """The encoded splits the config names (the bundled Census-Income data or CSV files)."""
    if isinstance(config.data, CensusDataConfig):
        from multitask.data._census import load_census_income

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


def build_tasks(config: ExperimentConfig, data: TabularData, in_features: int) -> list[Task]:
    """One `Task` per config entry, each with an MLP head on the encoder's output."""
    tasks = []
    for spec in config.tasks:
        outputs = len(data.classes[spec.name]) if spec.kind == "multiclass" else 1
        head = MLP(in_features, spec.head.hidden, outputs, spec.head.dropout)
        tasks.append(Task(spec.name, head, spec.kind, loss=spec.loss, metrics=spec.metrics))
    return tasks


def build_encoder(config: ExperimentConfig, num_features: int) -> MLP:
    """The shared encoder of the config."""
    encoder = config.model.encoder
    return MLP(num_features, encoder.hidden, None, encoder.dropout)


def build_model(config: ExperimentConfig, architecture: str, num_features: int) -> ModelFactory:
    """``tasks -> model``: the named architecture (see `multitask.config.ARCHITECTURES`) as the config sets it up."""
    spec = config.model
    expert_spec = spec.expert or spec.encoder

    def encoder() -> MLP:
        return build_encoder(config, num_features)

    def expert(in_features: int) -> MLP:
        return MLP(in_features, expert_spec.hidden, None, expert_spec.dropout)

    def experts(count: int) -> list[nn.Module]:
        return [expert(num_features) for _ in range(count)]

    def build(tasks: Sequence[Task]) -> MultiTaskModel:
        if architecture in ("mmoe", "omoe"):
            shared_gate = architecture == "omoe"
            return MMoE(experts(spec.num_experts), tasks, in_features=num_features, shared_gate=shared_gate)
        if architecture in ("cgc", "ple"):
            levels = 1 if architecture == "cgc" else spec.num_levels
            return PLE(
                expert,
                tasks,
                in_features=num_features,
                num_task_experts=spec.num_task_experts,
                num_shared_experts=spec.num_shared_experts,
                num_levels=levels,
            )
        if architecture == "dselect_k":
            return DSelectK(experts(spec.num_experts), tasks, in_features=num_features, k=spec.k)
        if architecture == "cross_stitch":
            return CrossStitch(list(encoder()), tasks, self_weight=spec.self_weight)
        if architecture == "soft_sharing":
            return SoftSharing(encoder(), tasks, lam=spec.lam)
        if architecture == "coupled":
            return CoupledNetworks(encoder(), tasks, lam=spec.lam)
        if architecture == "hard_sharing":
            return HardSharing(encoder(), tasks)
        raise ConfigError(f"unknown architecture {architecture!r}")

    return build


def _architecture(config: ExperimentConfig, method: str) -> str:
    """The architecture ``method`` trains (``mtl``: the ``model`` section's; STL and transfer: hard sharing)."""
    if method == "mtl":
        return config.model.type
    if method == "stl" or method.startswith("transfer:"):
        return "hard_sharing"
    return method


def trainer_options(config: ExperimentConfig, progress: bool | None = None) -> dict[str, Any]:
    """Keyword arguments of `Trainer` that the config's ``training`` and ``strategy`` sections set."""
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
        "optimizer": make_optimizer,
        "scheduler": scheduler,
        "max_epochs": training.epochs,
        "batch_size": training.batch_size,
        "eval_batch_size": training.eval_batch_size,
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
    return result


def output_dir(config: ExperimentConfig, output: str | Path | None = None) -> Path:
    """Where the run is written: ``output``, else the config's ``output``, else ``runs/NAME``."""
    if output is not None:
        return Path(output)
    return config.output if config.output is not None else Path("runs") / config.name


def run_experiment(
    config: ExperimentConfig,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> Comparison:
    """Train every method the config asks for and write the run folder; returns the comparison.

    The folder gets ``config.yaml`` (the validated config), one sub-folder per method with its
    checkpoints, metrics and curves, and ``results.csv``, ``results.md``, ``comparison.png``.

    Raises:
        ConfigError: The folder already holds a run and neither ``resume`` nor ``overwrite`` is set.
    """
    directory = output_dir(config, output)
    saved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    distributed = Distributed.from_environment()  # under torchrun: rank 0 prepares the folder, the others wait
    if distributed is None:
        _prepare_run_dir(directory, saved, resume, overwrite)
    else:
        distributed.run_on_main(_prepare_run_dir, directory, saved, resume, overwrite)
    data = load_data(config)
    encoder = build_encoder(config, data.num_features)
    tasks = build_tasks(config, data, encoder.out_features)
    methods = config.compare.methods
    model = None if config.model.type == "hard_sharing" else build_model(config, config.model.type, data.num_features)
    architectures: dict[str, ModelFactory] = {
        m: build_model(config, m, data.num_features) for m in methods if m not in ("stl", "mtl")
    }
    return compare(
        encoder,
        tasks,
        data.train,
        data.val,
        data.test,
        methods=[m for m in methods if m in ("stl", "mtl")],
        model=model,
        architectures=architectures,
        transfer=config.compare.transfer,
        freeze_encoder=config.compare.freeze_encoder,
        seed=config.seed,
        run_dir=directory,
        resume=resume,
        **trainer_options(config, progress),
    )


def _prepare_run_dir(directory: Path, saved: str, resume: bool, overwrite: bool) -> None:
    """Check the run folder against ``resume``/``overwrite``, then create it holding ``config.yaml``."""
    if directory.exists() and any(directory.iterdir()) and not resume:
        if not overwrite:
            raise ConfigError(f"{directory} already holds a run: pass --resume to continue it, or --output/--overwrite")
        shutil.rmtree(directory)
    previous = directory / "config.yaml"
    if resume and previous.is_file() and previous.read_text() != saved:
        raise ConfigError(
            f"{directory} was trained with a different config ({previous}); resume it with that config, "
            "or start a new run with --output or --overwrite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    previous.write_text(saved)


@dataclass(frozen=True)
class _SavedModel:
    method: str
    path: Path
    task_names: tuple[str, ...]


def _saved_models(directory: Path, config: ExperimentConfig) -> list[_SavedModel]:
    names = tuple(task.name for task in config.tasks)
    found = []
    if (directory / "stl").is_dir():
        found += [_SavedModel("stl", directory / "stl" / name / "model.pt", (name,)) for name in names]
    for method in config.compare.methods:
        if method != "stl" and (directory / method).is_dir():
            found.append(_SavedModel(method, directory / method / "model.pt", names))
    for source, target in config.compare.transfer:
        path = directory / f"transfer-{source}-to-{target}" / "finetune" / "model.pt"
        if path.parent.is_dir():
            found.append(_SavedModel(f"transfer:{source}->{target}", path, (target,)))
    return found


def evaluate_run(run_dir: str | Path, split: str = "test") -> Comparison:
    """Re-evaluate the models saved in a run folder on ``split`` (``"test"`` or ``"val"``)."""
    directory = Path(run_dir)
    if not (directory / "config.yaml").is_file():
        raise ConfigError(f"{directory} is not a run folder (no config.yaml); give the folder `multitask train` wrote")
    config = load_config(directory / "config.yaml")
    data = load_data(config)
    dataset = data.test if split == "test" else data.val
    if dataset is None:
        raise ConfigError(f"the run's data has no {split} split")
    saved = _saved_models(directory, config)
    if not saved:
        raise CheckpointError(
            f"{directory} holds no trained model (stl/, mtl/, an architecture's folder or transfer-*/)"
        )
    results: dict[str, dict[str, dict[str, float]]] = {}
    encoder = build_encoder(config, data.num_features)
    all_tasks = {task.name: task for task in build_tasks(config, data, encoder.out_features)}
    for entry in saved:
        if not entry.path.is_file():
            partial = list_checkpoints(entry.path.parent / "checkpoints")
            hint = " (training did not finish: run `multitask train CONFIG --resume`)" if partial else ""
            raise CheckpointError(f"missing {entry.path}{hint}")
        tasks = [all_tasks[name] for name in entry.task_names]
        model = build_model(config, _architecture(config, entry.method), data.num_features)(tasks)
        model.load_state_dict(load_checkpoint(entry.path)["model"])
        trainer = Trainer(model, tasks, progress=False, device=config.training.device)
        evaluation = trainer.evaluate(dataset)
        per_task = results.setdefault(entry.method, {})
        per_task.update({t: {m: v for m, v in ms.items() if m != "loss"} for t, ms in evaluation.items()})
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in all_tasks.values()}
    return Comparison(results, directions)

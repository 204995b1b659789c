"""`TrainerOptions`: every setting of a `Trainer` but its model and tasks, as one frozen value."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from multitask.data import LoaderOptions, Sampling
from multitask.errors import ConfigError
from multitask.jacobian import JacobianEngine
from multitask.models import MultiTaskModel
from multitask.strategy import Strategy
from multitask.tasks import Task
from multitask.training._arguments import StrategyFactory
from multitask.training.callbacks import Callback
from multitask.training.distributed import Distributed
from multitask.training.progress import RunProgress
from multitask.training.trainer import OptimizerFactory, SchedulerFactory, Trainer


@dataclass(frozen=True)
class TrainerOptions:
    """The keyword arguments of `Trainer`, with the same names, types and defaults (see `Trainer` for each).

    One value holds the settings of many trainings (the baselines, a sweep, every seed of a run):
    `replace` derives a variant, `trainer` builds a `Trainer` for a model and its tasks. The values
    are checked when a Trainer is built. The optimiser and the scheduler are given as factories, and
    so may the strategy be: a factory (``strategy=lambda: Strategy(weighting=DWA())``) gives every
    Trainer a `Strategy` of its own, which stateful methods need (the loss history of DWA, the state
    of FAMO or GradVac must not be shared between runs), whereas a `Strategy` instance is shared by
    every Trainer built from these options. Callbacks and a `RunProgress` are shared too.

    Example:
        >>> options = TrainerOptions(max_epochs=5, lr=3e-3)
        >>> options.replace(max_epochs=20).max_epochs, options.max_epochs
        (20, 5)
    """

    strategy: Strategy | StrategyFactory | None = None
    engine: JacobianEngine | None = None
    optimizer: OptimizerFactory | None = None
    lr: float = 1e-3
    scheduler: SchedulerFactory | None = None
    scheduler_interval: Literal["epoch", "step"] = "epoch"
    max_epochs: int = 10
    batch_size: int | Mapping[str, int] = 256
    eval_batch_size: int = 4096
    sampling: Sampling = "round_robin"
    temperature: float | None = None
    tasks_per_step: int | None = None
    steps_per_epoch: int | None = None
    shuffle: bool = True
    loading: LoaderOptions | None = None
    monitor: str | None = None
    patience: int | None = None
    restore_best: bool = True
    baseline: Mapping[str, Mapping[str, float]] | None = None
    grad_clip: float | None = None
    mixed_precision: bool = False
    device: str | torch.device | None = None
    on_nonfinite: Literal["raise", "skip"] = "raise"
    run_dir: str | Path | None = None
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    callbacks: Sequence[Callback] = ()
    progress: bool | RunProgress | None = None
    seed: int = 0
    distributed: bool | Distributed | None = None

    def replace(self, **changes: Any) -> TrainerOptions:
        """These options with ``changes``, given by name; the others are kept.

        Raises:
            ConfigError: A name is not one of the options (the message lists them).
        """
        names = [field.name for field in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ConfigError(f"unknown Trainer option(s) {unknown}; the options are: {', '.join(sorted(names))}")
        return dataclasses.replace(self, **changes)

    def trainer(self, model: MultiTaskModel, tasks: Sequence[Task]) -> Trainer:
        """``Trainer(model, tasks, **options)``: a strategy factory is called for it, an instance is shared."""
        keywords = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return Trainer(model, tasks, **keywords)

"""The ``training`` section: budget, optimiser, schedule and loop options."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Literal

import torch
from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from multitask._device import check_device
from multitask.config._common import StrictModel
from multitask.data import LoaderOptions, Transform
from multitask.errors import ConfigError
from multitask.training import TrainerOptions
from multitask.training.trainer import OptimizerFactory, SchedulerFactory


class OptimizerConfig(StrictModel):
    """The optimiser and its learning rate."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)

    def build(self) -> OptimizerFactory:
        """``parameters -> optimiser``: ``torch.optim.Adam``/``AdamW``/``SGD`` with these settings."""

        def make(parameters: Iterable[nn.Parameter]) -> Optimizer:
            if self.name == "sgd":
                return torch.optim.SGD(parameters, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
            kind = torch.optim.AdamW if self.name == "adamw" else torch.optim.Adam
            return kind(parameters, lr=self.lr, weight_decay=self.weight_decay)

        return make


class SchedulerConfig(StrictModel):
    """A learning-rate schedule stepped every epoch."""

    name: Literal["cosine", "step"]
    step_size: int = Field(default=10, gt=0)
    gamma: float = Field(default=0.1, gt=0)

    def build(self, epochs: int) -> SchedulerFactory:
        """``optimiser -> schedule``: cosine annealing over ``epochs`` epochs, or a step decay."""

        def make(optimizer: Optimizer) -> LRScheduler:
            if self.name == "cosine":
                return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.step_size, gamma=self.gamma)

        return make


class TrainingConfig(StrictModel):
    """The training budget and loop options (see `multitask.Trainer`).

    ``batch_size``: rows per batch, or ``{task: rows}`` for multi-input data. ``sampling``,
    ``temperature``, ``tasks_per_step``, ``steps_per_epoch``: which tasks each step of multi-input data
    draws (`multitask.data.TaskSchedule`; the temperature rule draws task t with probability ∝ n_t^(1/τ)).
    ``num_workers``, ``pin_memory``, ``prefetch_factor``, ``persistent_workers``: how the data is read
    (`multitask.data.LoaderOptions`; with workers, images are decoded in worker processes).
    """

    epochs: int = Field(default=10, gt=0)
    batch_size: Annotated[int, Field(gt=0)] | dict[str, Annotated[int, Field(gt=0)]] = 256
    eval_batch_size: int = Field(default=4096, gt=0)
    sampling: Literal["round_robin", "proportional", "uniform", "temperature"] = "round_robin"
    temperature: float | None = Field(default=None, gt=0)
    tasks_per_step: int | None = Field(default=None, gt=0)
    steps_per_epoch: int | None = Field(default=None, gt=0)
    num_workers: int = Field(default=0, ge=0)
    pin_memory: bool = False
    prefetch_factor: int | None = Field(default=None, ge=1)
    persistent_workers: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig | None = None
    grad_clip: float | None = Field(default=None, gt=0)
    mixed_precision: bool = False
    monitor: str | None = None
    patience: int | None = Field(default=None, gt=0)
    checkpoint_every: int | None = Field(default=None, gt=0)
    on_nonfinite: Literal["raise", "skip"] = "raise"
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _a_device_here(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_device(value)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _consistent_loading(self) -> TrainingConfig:
        if (self.sampling == "temperature") != (self.temperature is not None):
            raise ValueError(
                "sampling: temperature and a temperature τ go together (τ = 1: proportional, inf: uniform)"
            )
        if self.num_workers == 0 and (self.prefetch_factor is not None or self.persistent_workers):
            raise ValueError("prefetch_factor and persistent_workers need worker processes: set num_workers > 0")
        if isinstance(self.batch_size, dict) and not self.batch_size:
            raise ValueError("batch_size: give one size, or a size for every task")
        return self

    def build_scheduler(self) -> SchedulerFactory | None:
        """The ``scheduler`` section's schedule over this budget's epochs (None: a constant learning rate)."""
        return self.scheduler.build(self.epochs) if self.scheduler is not None else None

    def trainer_options(self, train_transform: Transform | None = None) -> TrainerOptions:
        """The `TrainerOptions` this section sets: the optimiser and its schedule, the budget, the task sampling,
        the loading (`loader_options`, with ``train_transform``), selection, clipping, precision, checkpoints,
        the device. The rest (strategy, callbacks, progress, seed) is the caller's, by `TrainerOptions.replace`."""
        return TrainerOptions(
            optimizer=self.optimizer.build(),
            lr=self.optimizer.lr,
            scheduler=self.build_scheduler(),
            max_epochs=self.epochs,
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            sampling=self.sampling,
            temperature=self.temperature,
            tasks_per_step=self.tasks_per_step,
            steps_per_epoch=self.steps_per_epoch,
            loading=self.loader_options(train_transform),
            monitor=self.monitor,
            patience=self.patience,
            grad_clip=self.grad_clip,
            mixed_precision=self.mixed_precision,
            checkpoint_every=self.checkpoint_every,
            on_nonfinite=self.on_nonfinite,
            device=self.device,
        )

    def loader_options(self, train_transform: Transform | None = None) -> LoaderOptions:
        """How the Trainer reads the data: ``num_workers``, ``pin_memory``, ... and a training-only transform."""
        return LoaderOptions(
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            persistent_workers=self.persistent_workers,
            train_transform=train_transform,
        )

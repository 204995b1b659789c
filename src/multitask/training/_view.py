"""`TrainerView`: what callbacks, the progress display and the multi-process step read of a `Trainer`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor
from torch.optim import Optimizer

from multitask.models import MultiTaskModel
from multitask.strategy import Strategy
from multitask.tasks import Task
from multitask.training._selection import ModelSelection
from multitask.training.distributed import Distributed


@runtime_checkable
class TrainerView(Protocol):
    """The part of a `Trainer` that its callbacks read: what it trains, how, and where the run stands.

    `Trainer` is one; the hooks of `Callback` are typed against this protocol, so that callbacks do
    not depend on the loop that calls them. The members are read-only here, but what they hold may be
    changed as the library's own callbacks do (the loggers add their means to ``history[-1]``).
    """

    @property
    def model(self) -> MultiTaskModel:
        """The model being trained."""

    @property
    def tasks(self) -> Mapping[str, Task]:
        """``{name: task}``, in the model's task order."""

    @property
    def task_names(self) -> tuple[str, ...]:
        """The tasks' names, in order (the order of every per-task tensor ``[T]``)."""

    @property
    def strategy(self) -> Strategy:
        """How per-task losses become the update."""

    @property
    def optimizer(self) -> Optimizer:
        """The optimiser of the model's (and the strategy's) parameters."""

    @property
    def scaler(self) -> torch.amp.GradScaler:
        """The loss scaler of mixed precision (disabled when the gradients are not scaled)."""

    @property
    def device(self) -> torch.device:
        """Where the model trains."""

    @property
    def distributed(self) -> Distributed | None:
        """The processes of a multi-process run; None in one process."""

    @property
    def seed(self) -> int:
        """The run's seed."""

    @property
    def max_epochs(self) -> int:
        """Number of epochs planned."""

    @property
    def batch_size(self) -> int | Mapping[str, int]:
        """Rows per training batch (``{task: rows}`` with multi-input data)."""

    @property
    def monitor(self) -> str | None:
        """The validation key that selects the best model, as given (None: the default one)."""

    @property
    def baseline(self) -> Mapping[str, Mapping[str, float]] | None:
        """``{task: {metric: value}}`` that Δm is measured against, if any."""

    @property
    def run_dir(self) -> Path | None:
        """The run folder; None when nothing is written."""

    @property
    def epoch(self) -> int:
        """Epochs finished (the current epoch's index, from 0, while one runs)."""

    @property
    def global_step(self) -> int:
        """Optimisation steps taken since the start of the run."""

    @property
    def history(self) -> list[dict[str, float]]:
        """One record per finished epoch (``epoch``, ``train/...``, ``val/...``, ...)."""

    @property
    def selection(self) -> ModelSelection:
        """The best epoch so far on the monitored value, and whether to stop early."""

    @property
    def aggregation_weights(self) -> Tensor | None:
        """The aggregator's task weights ``[T]`` in the last step (methods that act through weights; else None)."""

"""Tasks: `Task` (what one task is — its head, loss, metrics, labels), the built-in losses, and `task_losses`."""

from __future__ import annotations

from multitask.tasks._evaluation import AnyMetric, TaskEvaluation
from multitask.tasks._losses import (
    BUILTIN_DENSE_LOSSES,
    BUILTIN_LOSSES,
    DEFAULT_DENSE_LOSS,
    DEFAULT_LOSS,
    TASK_KINDS,
    LossFn,
    TaskKind,
)
from multitask.tasks._task import Task
from multitask.tasks._task_losses import TaskLosses, task_losses

__all__ = [
    "BUILTIN_DENSE_LOSSES",
    "BUILTIN_LOSSES",
    "DEFAULT_DENSE_LOSS",
    "DEFAULT_LOSS",
    "TASK_KINDS",
    "AnyMetric",
    "LossFn",
    "Task",
    "TaskEvaluation",
    "TaskKind",
    "TaskLosses",
    "task_losses",
]

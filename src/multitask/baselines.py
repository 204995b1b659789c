"""`multitask.studies`' baselines under their former module name, kept for one release."""

from multitask.studies import (
    ModelFactory,
    RunResult,
    compare,
    fresh_copy,
    fresh_task,
    train_multitask,
    train_single_task,
    train_transfer,
)

__all__ = [
    "ModelFactory",
    "RunResult",
    "compare",
    "fresh_copy",
    "fresh_task",
    "train_multitask",
    "train_single_task",
    "train_transfer",
]

"""Studies: procedures that train several models and compare them.

The single-task, multi-task and transfer baselines (`compare`), the trade-off sweep (`pareto_sweep`),
task groupings (`pairwise_transfer`, `train_groups`) and negative-transfer detection over seeds
(`detect_negative_transfer`). They train through `multitask.Trainer` and return the records of
`multitask.analysis` and `multitask.comparison`, which never train. (The linear method,
`multitask.analysis.fit_linear`, stays beside its record: a convex fit, no Trainer.)
"""

from multitask.models import ModelFactory  # re-exported: where a study's architectures are given
from multitask.studies._baselines import (
    RunResult,
    compare,
    fresh_copy,
    fresh_task,
    train_multitask,
    train_single_task,
    train_transfer,
)
from multitask.studies._groups import pairwise_transfer, train_groups
from multitask.studies._pareto import pareto_sweep
from multitask.studies._transfer import detect_negative_transfer

__all__ = [
    "ModelFactory",
    "RunResult",
    "compare",
    "detect_negative_transfer",
    "fresh_copy",
    "fresh_task",
    "pairwise_transfer",
    "pareto_sweep",
    "train_groups",
    "train_multitask",
    "train_single_task",
    "train_transfer",
]

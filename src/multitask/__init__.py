"""Multi-task learning on PyTorch.

The public surface at a glance: `Task` describes a task, a model from `multitask.models` shares
parameters between tasks, a `Strategy` (loss weighting, gradient aggregation, regularisation,
adversarial training) says how per-task losses become one update, and two functions are the
seam to any training loop: `task_losses` (the losses ``[T]`` of a step) and `backward` (those
losses into ``.grad``). `Trainer` runs the loop on them. `multitask.baselines` trains the
single-task and transfer baselines to compare against.
`multitask.linear` (regularised linear MTL, scikit-learn estimators) needs no PyTorch: the names
below are imported lazily, so ``import multitask.linear`` does not load torch.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

# Idle OpenMP threads sleep instead of spinning. PyTorch's OpenMP runtime reads OMP_WAIT_POLICY once,
# when torch is first imported, so this only takes effect when multitask is imported first; an explicit
# setting by the user always wins. With spinning threads (the default), small models on a machine with
# few cores run several times slower as soon as another process wants a core (benchmarks/omp_wait_policy.py).
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from multitask._backward import BackwardResult, backward
    from multitask.strategy import Strategy
    from multitask.tasks import Task, TaskLosses, task_losses
    from multitask.training import Trainer, TrainerOptions

__all__ = ["BackwardResult", "Strategy", "Task", "TaskLosses", "Trainer", "TrainerOptions", "backward", "task_losses"]
__version__ = "0.1.0"

_LAZY = {
    "BackwardResult": "multitask._backward",
    "Strategy": "multitask.strategy",
    "Task": "multitask.tasks",
    "TaskLosses": "multitask.tasks",
    "Trainer": "multitask.training",
    "TrainerOptions": "multitask.training",
    "backward": "multitask._backward",
    "task_losses": "multitask.tasks",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'multitask' has no attribute {name!r}")

"""Multi-task learning on PyTorch.

The public surface at a glance: `Task` describes a task, a model from `multitask.models` shares
parameters between tasks, a `Strategy` (loss weighting, and later gradient aggregation,
regularisation, adversarial training) turns per-task losses into one update, and `Trainer` runs
the loop. `multitask.baselines` trains the single-task and transfer baselines to compare against.
`multitask.linear` (regularised linear MTL, scikit-learn estimators) needs no PyTorch: the names
below are imported lazily, so ``import multitask.linear`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multitask.strategy import Strategy
    from multitask.tasks import Task
    from multitask.training import Trainer

__all__ = ["Strategy", "Task", "Trainer"]
__version__ = "0.1.0"

_LAZY = {"Strategy": "multitask.strategy", "Task": "multitask.tasks", "Trainer": "multitask.training"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'multitask' has no attribute {name!r}")

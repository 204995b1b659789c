"""Multi-task learning on PyTorch.

The public surface at a glance: `Task` describes a task, a model from `multitask.models` shares
parameters between tasks, a `Strategy` (loss weighting, and later gradient aggregation,
regularisation, adversarial training) turns per-task losses into one update, and `Trainer` runs
the loop. `multitask.baselines` trains the single-task and transfer baselines to compare against.
"""

from multitask.strategy import Strategy
from multitask.tasks import Task
from multitask.training import Trainer

__all__ = ["Strategy", "Task", "Trainer"]
__version__ = "0.1.0"

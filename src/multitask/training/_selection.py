"""Model selection during training: which validation number to watch, the best epoch, early stopping."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.tasks import Task


def resolve_monitor(
    monitor: str | None, tasks: Sequence[Task], has_baseline: bool, has_validation: bool
) -> tuple[str | None, bool]:
    """The validation key to watch and whether higher is better.

    Allowed keys: ``val/delta_m`` (with a baseline; the default then), ``val/loss`` (the mean task
    loss; the default otherwise), ``val/TASK/loss`` and ``val/TASK/METRIC``.

    Raises:
        ConfigError: An unknown key (the message lists the allowed ones), or a monitor without validation data.
    """
    if not has_validation:
        if monitor is not None:
            raise ConfigError(f"monitor {monitor!r} needs validation data: fit(train, val)")
        return None, False
    directions: dict[str, bool] = {"val/delta_m": True} if has_baseline else {}
    directions["val/loss"] = False
    for task in tasks:
        directions[f"val/{task.name}/loss"] = False
        directions.update({f"val/{task.name}/{name}": m.higher_is_better for name, m in task.metric_fns.items()})
    chosen = monitor or next(iter(directions))
    if chosen not in directions:
        raise ConfigError(f"unknown monitor {chosen!r}; allowed: {', '.join(directions)}")
    return chosen, directions[chosen]


class ModelSelection:
    """Tracks the best epoch on one validation key, keeps its weights, and decides when to stop.

    Args:
        higher_is_better: Direction of the watched number.
        patience: Stop after this many epochs without improvement (None: never stop early).
    """

    def __init__(self, higher_is_better: bool, patience: int | None) -> None:
        self.higher_is_better = higher_is_better
        self.patience = patience
        self.best_score = math.nan
        self.best_epoch = -1
        self.bad_epochs = 0
        self.should_stop = False
        self.best_state: dict[str, Tensor] | None = None

    def update(self, score: float, epoch: int, model: nn.Module) -> None:
        """Record ``score`` of ``epoch``; a NaN score never counts as an improvement."""
        sign = 1.0 if self.higher_is_better else -1.0
        improved = not math.isnan(score) and (math.isnan(self.best_score) or sign * (score - self.best_score) > 0)
        if improved:
            self.best_score, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            return
        self.bad_epochs += 1
        if self.patience is not None and self.bad_epochs >= self.patience:
            self.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        """The selection's progress, for checkpoints."""
        return {
            "score": self.best_score,
            "epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stop": self.should_stop,
            "state": self.best_state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.best_score, self.best_epoch = state["score"], state["epoch"]
        self.bad_epochs, self.should_stop = state["bad_epochs"], state["stop"]
        self.best_state = state["state"]

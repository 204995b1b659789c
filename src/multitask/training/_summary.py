"""The one line that sums up a finished training: epochs, wall time and its best validation values."""

from __future__ import annotations

import math

from multitask.errors import ConfigError
from multitask.training._selection import resolve_monitor
from multitask.training._view import TrainerView


def summary(
    trainer: TrainerView, label: str, index: int | None = None, total: int | None = None, seconds: float = 0.0
) -> str:
    """One line on a finished training: label, its number in the run, epochs, wall time, its best validation values.

    E.g. ``✓ mtl (2/4)  10 epochs  34.2 s  best epoch 7  val Δm +1.23% income/auc 0.9512 marital/auc 0.9941``:
    the monitored value at the best epoch (the weights `Trainer.fit` keeps with ``restore_best``; named
    when it is not the last) and each task's main validation metric in that epoch; the last epoch's
    training losses when there was no validation data. Early stopping shows as ``stopped at epoch 6/10``;
    the number in the run, ``(2/4)``, only when the run's total is known.
    """
    place = f" ({index}/{total})" if index is not None and total is not None else ""
    history = trainer.history
    epochs = trainer.epoch
    if epochs < trainer.max_epochs and trainer.selection.should_stop:
        length = f"stopped at epoch {epochs}/{trainer.max_epochs}"
    else:
        length = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    parts = [f"✓ {label}{place}", length, f"{seconds:.1f} s"]
    if history:
        parts.append(_values(trainer))
    return "  ".join(part for part in parts if part)


def _values(trainer: TrainerView) -> str:
    """The best epoch's monitored value and main validation metrics (or the last training losses)."""
    history = trainer.history
    tasks = list(trainer.tasks.values())
    has_val = any(key.startswith("val/") for key in history[-1])
    if not has_val:
        losses = {t.name: history[-1].get(f"train/{t.name}/loss", math.nan) for t in tasks}
        return "train loss " + " ".join(f"{name} {value:.4f}" for name, value in losses.items())
    try:
        monitor, _ = resolve_monitor(trainer.monitor, tasks, trainer.baseline is not None, True)
    except ConfigError:
        monitor = None
    best = trainer.selection.best_epoch
    record = history[best] if 0 <= best < len(history) else history[-1]  # one record per epoch, from epoch 0
    shown: list[str] = []
    if 0 <= best < len(history) - 1:  # the kept weights are not the last epoch's
        shown.append(f"best epoch {best + 1}")
    values = []
    keys = [f"val/{t.name}/{t.main_metric}" for t in tasks]
    if monitor is not None and monitor not in keys:
        values.append(_value(monitor, record.get(monitor, math.nan)))
    values += [_value(key, record.get(key, math.nan)) for key in keys]
    shown.append("val " + " ".join(values))
    return "  ".join(shown)


def _value(key: str, value: float) -> str:
    name = key.removeprefix("val/")
    if name == "delta_m":
        return f"Δm {value:+.2f}%"
    return f"{name} {value:.4f}"

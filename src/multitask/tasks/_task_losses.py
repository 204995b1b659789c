"""The seam's first half: `task_losses` turns a step's outputs and batch into each task's loss, `TaskLosses`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from multitask.errors import ConfigError
from multitask.tasks._task import Task


@dataclass(frozen=True)
class TaskLosses:
    """Each task's loss of one step, as `task_losses` computes it and `multitask.backward` takes it.

    Attributes:
        values: ``[T]`` float32, each task's mean loss over its labelled entries, with its autograd
            graph; a constant ``0`` without gradient for an absent task.
        present: ``[T]`` bool, True where the task had at least one labelled entry.
        counts: ``[T]`` int64, the number of labelled entries of each task.
        names: The task names, in the order of the entries.
        parts: The ``T`` scalar losses that ``values`` stacks (empty when not known). `multitask.backward`
            differentiates them one by one, so that one task's backward pass does not run through
            the other tasks' heads.
    """

    values: Tensor
    present: Tensor
    counts: Tensor
    names: tuple[str, ...]
    parts: tuple[Tensor, ...] = ()

    def as_dict(self) -> dict[str, float]:
        """``{task: loss value}``, NaN for an absent task (for logs)."""
        values = self.values.detach().double().cpu().tolist()
        return {n: v if p else math.nan for n, v, p in zip(self.names, values, self.present.tolist(), strict=True)}


def task_losses(
    tasks: Sequence[Task],
    outputs: Mapping[str, Tensor],
    batch: Mapping[str, Tensor] | Mapping[str, Mapping[str, Tensor]],
) -> TaskLosses:
    """The per-task losses ``[T]`` of one step, with which tasks had labels and how many.

    ``L_t = (1 / n_t) Σ_{i labelled for t} ℓ_t(ŷ_ti, y_ti)``, with ``n_t`` the number of labelled
    entries (missing labels are masked, never zero-filled; see `Task`). A task whose output is not
    in ``outputs``, or whose labels are all missing, is absent: ``L_t = 0`` without gradient.

    Args:
        tasks: The tasks, in the order of the model's outputs (the order of the result).
        outputs: ``{task: head output}``, e.g. ``model(batch)``.
        batch: The batch holding every task's labels, or ``{task: batch}`` for multi-input data
            (one batch per task, each holding that task's labels).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> tasks = [Task("a", nn.Identity(), "regression"), Task("b", nn.Identity(), "regression")]
        >>> batch = {"a": torch.tensor([1.0, 3.0]), "b": torch.tensor([float("nan"), float("nan")])}
        >>> losses = task_losses(tasks, {"a": torch.zeros(2), "b": torch.zeros(2)}, batch)
        >>> losses.values, losses.present, losses.counts
        (tensor([5., 0.]), tensor([ True, False]), tensor([2, 0]))
    """
    if not tasks:
        raise ConfigError("task_losses needs at least one task")
    names = tuple(task.name for task in tasks)
    per_task = {name: batch[name] for name in names if isinstance(batch.get(name), Mapping)}
    values: list[Tensor] = []
    counts: list[int] = []
    device = next((output.device for output in outputs.values()), None)
    for task in tasks:
        if task.name not in outputs:
            values.append(torch.zeros((), device=device))
            counts.append(0)
            continue
        own = per_task.get(task.name, batch) if per_task else batch
        loss, count = task.compute_loss(outputs[task.name].float(), own)  # type: ignore[arg-type]
        values.append(loss.float())
        counts.append(count)
    count_tensor = torch.tensor(counts, dtype=torch.int64)
    present = (count_tensor > 0).to(values[0].device)
    return TaskLosses(torch.stack(values), present, count_tensor, names, tuple(values))

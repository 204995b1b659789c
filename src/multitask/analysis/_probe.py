"""Gradient probes: a step's per-task losses and gradients, computed without leaving a trace on training."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from multitask.data import Step
from multitask.errors import ConfigError
from multitask.jacobian import JacobianEngine
from multitask.models import MultiTaskModel
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.training import Trainer


@contextlib.contextmanager
def probing(model: nn.Module) -> Iterator[None]:
    """Run ``model`` for a measurement only: evaluation mode, a forked RNG, the mode restored afterwards.

    Evaluation mode makes the probe deterministic (no dropout) and keeps batch-norm running statistics
    untouched; the forked generator means a model that draws random numbers does not shift the training
    run's random stream. Gradients are taken with ``torch.autograd.grad``, so no ``.grad`` is written.
    """
    was_training = model.training
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        model.train(was_training)


def step_losses(
    model: MultiTaskModel,
    tasks: Mapping[str, Task],
    groups: Step,
    device: torch.device | str | None = None,
    parameters: Mapping[str, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Each task's mean loss on a step's batches, as the Trainer computes it: ``(losses [T], present [T])``.

    Args:
        model: The multi-task model.
        tasks: ``{name: Task}`` in the model's task order.
        groups: The step's batches ``[(batch, task names), ...]``.
        device: Where to move the batches (default: the model's device).
        parameters: ``{parameter name: tensor}`` to use instead of the model's own (a look-ahead,
            through ``torch.func.functional_call``).

    Returns:
        The losses (zero for a task with no label in the step) and which tasks had labels.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    losses: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    for batch, names in groups:
        moved = {key: value.to(device) for key, value in batch.items()}
        if parameters is None:
            outputs = model(moved, names)
        else:
            outputs = torch.func.functional_call(model, dict(parameters), args=(moved, names), strict=False)
        for name in names:
            losses[name], counts[name] = tasks[name].compute_loss(outputs[name].float(), moved)
    order = list(tasks)
    zero = torch.zeros((), device=device)
    vector = torch.stack([losses.get(name, zero).float() for name in order])
    present = torch.tensor([counts.get(name, 0) > 0 for name in order], device=vector.device)
    return vector, present


def named_shared_parameters(model: MultiTaskModel) -> list[tuple[str, nn.Parameter]]:
    """The model's shared parameters that require gradients, with their names in ``model.named_parameters()``."""
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    shared = [(names[id(p)], p) for p in model.shared_parameters() if p.requires_grad and id(p) in names]
    if not shared:
        raise ConfigError(
            f"{type(model).__name__} has no shared parameters that require gradients; gradient conflict and "
            "task affinity are measured on the shared parameters"
        )
    unique: dict[str, nn.Parameter] = dict(shared)
    return list(unique.items())


def check_every(every: int) -> int:
    """A positive sampling interval, or a `ConfigError` saying how to fix it."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(f"every must be a positive number of steps; got {every!r}")
    return every


def pair_names(task_names: Sequence[str]) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``."""
    return [(i, j) for i in range(len(task_names)) for j in range(i + 1, len(task_names))]


@dataclass(frozen=True)
class StepGradients:
    """A step's per-task losses and gradients on the shared parameters, measured by a probe.

    Attributes:
        losses: ``[T]`` each task's mean loss on the step's batches (detached; zero without labels).
        present: ``[T]`` (CPU) whether the task had labels in the step.
        blocks: One ``[T, *p.shape]`` block of the Jacobian per shared parameter ``p`` (rows of absent
            tasks are zero): the concatenated ``[T, P]`` matrix is never formed.
    """

    losses: Tensor
    present: Tensor
    blocks: list[Tensor]


# One entry per trainer: the gradients of the step being sampled, so that monitors sampling the same step
# (gradient conflict and task affinity) share one Jacobian. Released by the monitors at the step's end.
_STEP_GRADIENTS: weakref.WeakKeyDictionary[Trainer, tuple[tuple[int, int], StepGradients]] = weakref.WeakKeyDictionary()


def step_gradients(trainer: Trainer, groups: Step, engine: JacobianEngine) -> StepGradients:
    """The per-task gradients of the trainer's current step on its shared parameters, computed once per step.

    The probe runs as `probing` describes (evaluation mode, forked RNG, no ``.grad`` written). A second
    monitor asking for the same step (same global step, same batches) gets the same result without a
    second backward pass; `release_step_gradients` frees it.
    """
    key = (trainer.global_step, id(groups))
    cached = _STEP_GRADIENTS.get(trainer)
    if cached is not None and cached[0] == key:
        return cached[1]
    shared = [p for _, p in named_shared_parameters(trainer.model)]
    num_tasks = len(trainer.task_names)
    with probing(trainer.model):
        losses, present = step_losses(trainer.model, trainer.tasks, groups, trainer.device)
        blocks = [torch.zeros(num_tasks, *p.shape, dtype=p.dtype, device=p.device) for p in shared]
        if bool(present.any()):
            index = present.nonzero().flatten()
            for block, part in zip(blocks, engine.gradients(losses[index], shared), strict=True):
                block[index] = part.detach()
    result = StepGradients(losses.detach(), present.cpu(), blocks)
    _STEP_GRADIENTS[trainer] = (key, result)
    return result


def release_step_gradients(trainer: Trainer) -> None:
    """Forget the step's shared gradients (called when the step ends)."""
    _STEP_GRADIENTS.pop(trainer, None)

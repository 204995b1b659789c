"""The loss-weighting contract: per-task losses ``[T]`` → weights ``[T]`` and one scalar to minimise."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from multitask._registry import Registry
from multitask.errors import ConfigError, InvalidLossError, NonFiniteLossError, ShapeError, check_number


@dataclass(frozen=True)
class StepContext:
    """What the Trainer knows about a step besides the losses; methods that do not need it ignore it.

    Args:
        present: ``[T]`` booleans: the tasks with at least one labelled sample in this step. An
            absent task's loss is a constant ``0``; methods must not let it change their state.
        shared_parameters: The model's shared parameters in registration order (GradNorm takes
            the gradient norms on the last shared layer among them).
        epoch: Zero-based epoch of the step.
        step: Zero-based global step.
        all_reduce: In a multi-process run, sums a tensor over the processes (None: one process).
            The losses a method gets are then the global batch's, but gradients it computes from
            them itself are this process's share: it must pass them through ``all_reduce`` (as
            GradNorm does with its per-task gradients), on every process, in the same order.
    """

    present: Tensor
    shared_parameters: tuple[Tensor, ...] = ()
    epoch: int = 0
    step: int = 0
    all_reduce: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def all_present(cls, losses: Tensor) -> StepContext:
        """The context of a step where every task has labels (used when no context is given)."""
        return cls(present=torch.ones(losses.shape, dtype=torch.bool, device=losses.device))


class Weighting(nn.Module, ABC):
    """Turns per-task losses ``[T]`` into the scalar to minimise: ``weights(losses) · losses + penalty()``.

    State (learnable log-variances, loss histories, ...) lives in parameters, buffers and the
    module's extra state, so it is saved in checkpoints with the rest of the strategy. `setup` is
    called with the task names before training (the Trainer does it before building its optimiser,
    so learnable weights are in it); it (re)initialises the state. A task absent from a step (no
    labelled sample in its batch) has a constant zero loss there and ``context.present`` False.

    Methods whose objective is not linear in the losses (GLS, DB-MTL, FAMO, STCH) return the
    weights of its gradient, detached: ``∇(w · L) = Σ_t w_t ∇L_t`` equals the gradient of the
    paper's objective, so the update is the paper's and the logged weights are what it used.
    """

    task_names: tuple[str, ...] = ()

    def setup(self, task_names: Sequence[str]) -> None:
        """(Re)initialise the method's state for these tasks; validates task-count dependent arguments."""
        if not task_names:
            raise ConfigError(f"{type(self).__name__} needs at least one task")
        self.task_names = tuple(task_names)
        self.reset(len(self.task_names))

    def reset(self, num_tasks: int) -> None:
        """Create the state for ``num_tasks`` tasks; stateless methods have nothing to do."""

    @property
    def num_tasks(self) -> int:
        """Number of tasks given to `setup` (0 before)."""
        return len(self.task_names)

    def forward(self, losses: Tensor, context: StepContext | None = None) -> Tensor:
        """The scalar objective ``Σ_t w_t L_t + penalty`` (sets up with default names if needed)."""
        context = self.prepare(losses, context)
        return self.weights(losses, context) @ losses + self.penalty(context).to(losses)

    def prepare(self, losses: Tensor, context: StepContext | None) -> StepContext:
        """Check the losses' shape, set up on first use outside a Trainer, and fill in a default context."""
        if losses.dim() != 1:
            raise ShapeError(f"losses must be a vector [num_tasks]; got shape {tuple(losses.shape)}")
        if self.num_tasks != losses.numel():
            if self.num_tasks:
                raise ShapeError(f"{type(self).__name__} was set up for {self.num_tasks} tasks; got {losses.numel()}")
            self.setup([f"task{i}" for i in range(losses.numel())])
            self.to(losses.device)
        return context if context is not None else StepContext.all_present(losses)

    @abstractmethod
    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """Weights ``[T]`` for the losses ``[T]`` of this step."""

    def penalty(self, context: StepContext) -> Tensor:
        """The method's own additive term (e.g. uncertainty weighting's ``Σ log σ_t``); zero by default."""
        return torch.zeros(())

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """Hook called after each epoch with the mean training loss of each task ``[T]``; no-op by default.

        A task without any labelled sample in the epoch has a NaN mean. Epoch-level methods (e.g.
        dynamic weight average) update their state here; the Trainer calls it, so the user has
        nothing to remember.
        """

    def check_positive(
        self, losses: Tensor, present: Tensor, *, allow_zero: bool = True, why: str = "takes the log of each task loss"
    ) -> None:
        """Raise naming the task when a present task's loss is negative (or not finite) where the method takes a log."""
        values = losses.detach().tolist()
        for index, (value, is_present) in enumerate(zip(values, present.tolist(), strict=True)):
            if not is_present:
                continue
            name = self.task_names[index] if index < self.num_tasks else f"task{index}"
            if not math.isfinite(value):
                raise NonFiniteLossError(f"{type(self).__name__}: task {name!r} has a non-finite loss {value}")
            if value < 0 or (value == 0 and not allow_zero):
                raise InvalidLossError(
                    f"{type(self).__name__} {why}, so losses must be "
                    f"{'non-negative' if allow_zero else 'positive'}; task {name!r} has loss {value:.6g} "
                    "(use a non-negative loss such as MSE or cross-entropy, or another weighting)"
                )


def check_num_tasks(name: str, values: Sequence[object], task_names: Sequence[str]) -> None:
    """Raise `ConfigError` when a per-task argument does not have one entry per task."""
    if len(values) != len(task_names):
        raise ConfigError(
            f"{name} has {len(values)} entr{'y' if len(values) == 1 else 'ies'} but there are "
            f"{len(task_names)} tasks ({', '.join(task_names)}); give one value per task, in that order"
        )


def check_preference(preference: object) -> list[float]:
    """A preference vector as floats; `ConfigError` unless its entries are finite, non-negative and sum to one."""
    if isinstance(preference, str) or not isinstance(preference, Sequence) or not preference:
        raise ConfigError(f"preference must be a list with one number per task; got {preference!r}")
    values = [check_number(f"preference[{i}]", value, strict=False) for i, value in enumerate(preference)]
    if abs(sum(values) - 1.0) > 1e-6:
        raise ConfigError(
            f"preference must sum to one; got {values} (sum {sum(values):.6g}); divide by the sum to normalise"
        )
    return values


def masked_softmax(logits: Tensor, present: Tensor) -> Tensor:
    """``softmax`` over the present entries; absent entries get 0 (all zeros when none is present)."""
    if not bool(present.any()):
        return torch.zeros_like(logits)
    masked = logits.masked_fill(~present, -math.inf)
    return torch.softmax(masked, dim=0)


registry: Registry[Weighting] = Registry("weighting")

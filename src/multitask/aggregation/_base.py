"""The aggregation contract: task Jacobian ``[T, P]`` (or its Gramian ``[T, T]``) → one update ``[P]``."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from multitask._registry import Registry
from multitask.errors import ConfigError, MultitaskError, ShapeError


class NonFiniteGradientError(MultitaskError, FloatingPointError):
    """A task gradient (a row of the Jacobian) holds NaN or infinity."""


class AggregationWarning(UserWarning):
    """An aggregator met a degenerate input or a solver that did not converge and used its stated fallback."""


def check_jacobian(jacobian: Tensor) -> None:
    """Raise unless ``jacobian`` is a finite floating-point matrix ``[T, P]`` with ``T ≥ 1``."""
    if jacobian.dim() != 2 or jacobian.shape[0] == 0:
        raise ShapeError(f"jacobian must be [num_tasks, num_params] with num_tasks ≥ 1; got {tuple(jacobian.shape)}")
    if not jacobian.is_floating_point():
        raise ShapeError(f"jacobian must be a floating-point tensor; got {jacobian.dtype}")
    if is_finite(jacobian):
        return
    finite = torch.isfinite(jacobian).all(dim=1)
    if not bool(finite.all()):
        rows = (~finite).nonzero().flatten().tolist()
        raise NonFiniteGradientError(
            f"the gradient of task(s) at row(s) {rows} is not finite; lower the learning rate, "
            "clip gradients, or check the loss for overflow"
        )


def is_finite(values: Tensor) -> bool:
    """Whether every entry is finite: one fast reduction (NaN and inf propagate), confirmed entrywise if not."""
    return bool(torch.isfinite(values.sum())) or bool(torch.isfinite(values).all())


def check_gramian(gramian: Tensor) -> None:
    """Raise unless ``gramian`` is a finite square floating-point matrix ``[T, T]`` with ``T ≥ 1``."""
    if gramian.dim() != 2 or gramian.shape[0] != gramian.shape[1] or gramian.shape[0] == 0:
        raise ShapeError(f"gramian must be a square [num_tasks, num_tasks] matrix; got {tuple(gramian.shape)}")
    if not gramian.is_floating_point():
        raise ShapeError(f"gramian must be a floating-point tensor; got {gramian.dtype}")
    if not bool(torch.isfinite(gramian).all()):
        raise NonFiniteGradientError("the gramian is not finite: some task gradient holds NaN or infinity")


def task_indices(num_rows: int, tasks: Sequence[int] | Tensor | None) -> list[int]:
    """The task index of each row: ``tasks`` checked against ``num_rows``, or ``0 .. num_rows - 1``."""
    if tasks is None:
        return list(range(num_rows))
    indices = [int(t) for t in (tasks.tolist() if isinstance(tasks, Tensor) else tasks)]
    if len(indices) != num_rows or len(set(indices)) != num_rows or min(indices) < 0:
        raise ShapeError(f"tasks must give one distinct non-negative index per row ({num_rows}); got {indices}")
    return indices


class Aggregator(nn.Module, ABC):
    """Maps the task Jacobian ``[T, P]`` (one row per task gradient) to one update ``[P]``.

    Aggregators are modules so that their state (EMA targets, warm starts, random generator
    states) lives in buffers or the extra state and travels in every checkpoint with the rest of
    the `Strategy`; all of it loads with ``torch.load(weights_only=True)``. The update is the one
    the method's paper prescribes, direction and scale; the Trainer writes it into the shared
    parameters' ``.grad`` (descent is ``θ ← θ − lr · update``), so an aggregator never touches
    ``.grad`` nor calls ``backward``.

    ``tasks`` (optional everywhere) names the task index of each row: the Trainer drops the rows
    of tasks absent from a step and passes the indices of the rest, so that stateful methods
    update the state of the right tasks. The update has the input's dtype; Gramian methods form
    ``G`` in that dtype (one ``[T, P] × [P, T]`` product) and solve for their weights in float64.
    """

    num_tasks: int = 0
    is_stateful: bool = False  # keeps per-task state across steps (then the task count is fixed by `setup`)
    generator: torch.Generator | None = None  # randomised methods draw from it (global RNG when None)

    def setup(self, num_tasks: int) -> None:
        """(Re)create per-task state for ``num_tasks`` tasks; stateless methods only record the count."""
        if num_tasks < 1:
            raise ConfigError(f"{type(self).__name__} needs at least one task; got {num_tasks}")
        self.num_tasks = num_tasks
        self.reset(num_tasks)

    def reset(self, num_tasks: int) -> None:
        """Create the method's state for ``num_tasks`` tasks; nothing for stateless methods."""

    def forward(self, jacobian: Tensor, tasks: Sequence[int] | Tensor | None = None) -> Tensor:
        """The update ``[P]`` for ``jacobian [T, P]`` (rows of the tasks ``tasks``, all by default)."""
        check_jacobian(jacobian)
        indices = self._prepare(jacobian.shape[0], tasks)
        return self.aggregate(jacobian, indices)

    def _prepare(self, num_rows: int, tasks: Sequence[int] | Tensor | None) -> list[int]:
        indices = task_indices(num_rows, tasks)
        needed = max(indices) + 1
        if self.num_tasks == 0 or (needed > self.num_tasks and not self.is_stateful):
            self.setup(needed)
        elif needed > self.num_tasks:
            raise ShapeError(
                f"{type(self).__name__} was set up for {self.num_tasks} tasks; got task index {needed - 1} "
                "(call setup(num_tasks) to start its state afresh for more tasks)"
            )
        return indices

    @abstractmethod
    def aggregate(self, jacobian: Tensor, tasks: list[int]) -> Tensor:
        """The update ``[P]`` (dtype of ``jacobian``) for a checked ``jacobian [T, P]`` whose rows are ``tasks``."""

    def get_extra_state(self) -> dict[str, Tensor]:
        """The random generator's state, so that a resumed run draws what the original would have."""
        return {"generator": self.generator.get_state()} if self.generator is not None else {}

    def set_extra_state(self, state: dict[str, Tensor]) -> None:
        """Restore what `get_extra_state` saved."""
        if self.generator is not None and "generator" in state:
            self.generator.set_state(state["generator"])

    def randperm(self, n: int) -> list[int]:
        """A random permutation of ``range(n)`` drawn from `generator` (on the CPU, so same on every device)."""
        return torch.randperm(n, generator=self.generator).tolist()

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())

    def _hyperparameters(self) -> dict[str, Any]:
        return {}


class GramianAggregator(Aggregator):
    """An aggregator whose update is ``w(G) · J`` with ``G = J Jᵀ``: it needs only the ``[T, T]`` Gramian.

    `weights` maps a Gramian to the task weights ``[T]``; the Trainer can then build the update
    as one ordinary backward pass of ``Σ_t w_t L_t``, without holding the Jacobian.
    """

    def aggregate(self, jacobian: Tensor, tasks: list[int]) -> Tensor:
        """``w(J Jᵀ) @ J``: ``G`` in the Jacobian's dtype, the weights in float64."""
        gramian = (jacobian @ jacobian.T).double()
        weights = self.compute_weights((gramian + gramian.T) / 2, tasks)
        return weights.to(jacobian.dtype) @ jacobian

    def weights(self, gramian: Tensor, tasks: Sequence[int] | Tensor | None = None) -> Tensor:
        """The task weights ``[T]`` of the update for ``gramian [T, T]``; the update is ``weights @ J``."""
        check_gramian(gramian)
        indices = self._prepare(gramian.shape[0], tasks)
        dtype = gramian.dtype
        gramian = gramian.double()
        gramian = (gramian + gramian.T) / 2  # round-off can leave it slightly asymmetric
        return self.compute_weights(gramian, indices).to(dtype)

    @abstractmethod
    def compute_weights(self, gramian: Tensor, tasks: list[int]) -> Tensor:
        """Weights ``[T]`` (float64) for a checked, symmetric float64 ``gramian [T, T]``."""


def warn(message: str) -> None:
    """Issue an `AggregationWarning` pointing at the caller of the aggregator."""
    warnings.warn(message, AggregationWarning, stacklevel=4)


registry: Registry[Aggregator] = Registry("aggregation")

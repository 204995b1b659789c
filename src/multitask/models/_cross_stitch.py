"""Cross-stitch networks: one column of layers per task, activations mixed between layers."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import check_tasks, column
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


class CrossStitch(MultiTaskModel):
    r"""One copy of a layer stack per task, with a learnable ``T × T`` cross-stitch unit after each layer.

    After layer ``l`` every task's activation becomes a linear combination of all tasks'
    activations: ``x̃_t^l = Σ_u α^l_{tu} x_u^l`` (Eq. 1, for ``T`` tasks), and column ``t`` feeds
    ``x̃_t^l`` to its layer ``l+1``; heads read ``x̃_t`` after the last layer. ``α^l`` starts at
    ``α_tt = self_weight`` and ``α_tu = (1 − self_weight) / (T − 1)`` (rows sum to one, as the
    paper's ``(α_S, α_D)`` initialisation). ``α = I`` gives independent networks; equal rows mix
    all columns alike. Layers may be any modules whose outputs have the same shape across tasks
    (linear, convolutional blocks, ...).

    Every column and unit influences every task through the units, so all parameters but the
    heads are shared.

    Args:
        layers: The layer stack of one column; each task gets a deep copy (same initial weights).
        tasks: The tasks (at least two).
        self_weight: Initial ``α_tt``, in ``[0, 1]``.
        input_key: Batch column fed to the first layer of every column.

    References:
        Misra et al., "Cross-Stitch Networks for Multi-task Learning", CVPR 2016.
    """

    hyperparameters = ("self_weight",)

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task], *, self_weight: float = 0.9) -> CrossStitch:
        """One column per task, each a copy of the parts' encoder (an `MLP`) (`multitask.models.create`)."""
        from multitask.models._mlp import MLP

        columns = parts.encoder()
        if not isinstance(columns, MLP):
            raise ConfigError(f"cross_stitch stitches MLP layers; the encoder is a {type(columns).__name__}")
        return cls(list(columns), tasks, self_weight=self_weight, input_key=parts.column(cls.__name__))

    def __init__(
        self,
        layers: Sequence[nn.Module],
        tasks: Sequence[Task],
        *,
        self_weight: float = 0.9,
        input_key: str = "x",
    ) -> None:
        super().__init__()
        self.task_names = check_tasks(tasks, "CrossStitch")
        if len(layers) == 0:
            raise ConfigError("CrossStitch: needs at least one layer")
        if not 0.0 <= self_weight <= 1.0:
            raise ConfigError(f"CrossStitch: self_weight must be in [0, 1]; got {self_weight}")
        num_tasks = len(self.task_names)
        self.columns = nn.ModuleDict(
            {task: nn.ModuleList(copy.deepcopy(layer) for layer in layers) for task in self.task_names}
        )
        other = (1.0 - self_weight) / (num_tasks - 1)
        start = torch.full((num_tasks, num_tasks), other) + (self_weight - other) * torch.eye(num_tasks)
        self.units = nn.ParameterList([nn.Parameter(start.clone()) for _ in layers])
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.input_key = input_key

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(x̃_t after the last layer)}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x = column(batch, self.input_key)
        states = [x] * len(self.task_names)
        columns = [list(column.children()) for column in self.columns.values()]
        for depth, alpha in enumerate(self.units):
            activations = torch.stack([column[depth](s) for column, s in zip(columns, states, strict=True)])
            mixed = torch.tensordot(alpha, activations, dims=([1], [0]))  # x̃_t = Σ_u α_tu x_u
            states = list(mixed.unbind(0))
        final = dict(zip(self.task_names, states, strict=True))
        return {task: self.heads[task](final[task]) for task in tasks}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The columns and the cross-stitch units."""
        yield from self.columns.parameters()
        yield from self.units.parameters()


register("cross_stitch", CrossStitch)

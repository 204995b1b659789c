"""Separate networks per task, coupled by the squared distance between their weights."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import check_tasks, column
from multitask.models._registry import register
from multitask.models._soft import check_strength
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


class CoupledNetworks(MultiTaskModel):
    r"""``T`` copies of a network, one per task, coupled by ``λ Σ_{t<u} ‖W_t − W_u‖²``.

    ``ŷ_t = h_t(module_t(x))``; `penalty` (returned by `regularization`, so the Trainer adds it) is
    ``λ`` times the summed squared distance between every pair of copies, over all parameters,
    computed as ``λ (T Σ_t ‖W_t‖² − ‖Σ_t W_t‖²)``. The copies start from the same weights (those
    of ``module``). ``λ = 0`` gives ``T`` independent models; as ``λ → ∞`` the copies are forced
    equal: hard sharing (`HardSharing`).

    No parameter is used by two tasks, so `shared_parameters` is empty: gradient aggregation has
    nothing to act on; use a loss weighting.

    Args:
        module: The network to copy; it maps the input column to the heads' features.
        tasks: The tasks (at least two).
        lam: Coupling strength ``λ ≥ 0``, finite.
        input_key: Batch column passed to every copy.

    References:
        Duong et al., "Low Resource Dependency Parsing: Cross-lingual Parameter Sharing in a
        Neural Network Parser", ACL 2015 (Eq. 3, for two parsers).
    """

    reads = frozenset({"features", "tokens", "images"})
    hyperparameters = ("lam",)

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task], *, lam: float = 0.01) -> CoupledNetworks:
        """One copy of the parts' encoder per task, coupled by ``lam`` (`multitask.models.create`)."""
        return cls(parts.encoder(), tasks, lam=lam, input_key=parts.column(cls.__name__))

    def __init__(self, module: nn.Module, tasks: Sequence[Task], *, lam: float, input_key: str = "x") -> None:
        super().__init__()
        self.task_names = check_tasks(tasks, "CoupledNetworks")
        self.lam = check_strength(lam, "CoupledNetworks", allow_inf=False)
        self.networks = nn.ModuleDict({task: copy.deepcopy(module) for task in self.task_names})
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.input_key = input_key

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(module_t(x))}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x = column(batch, self.input_key)
        return {task: self.heads[task](self.networks[task](x)) for task in tasks}

    def penalty(self) -> Tensor:
        """``λ Σ_{t<u} ‖W_t − W_u‖²`` summed over all parameters."""
        if self.lam == 0:
            return super().regularization()
        per_task = [list(self.networks[task].parameters()) for task in self.task_names]
        total = super().regularization()
        for group in zip(*per_task, strict=True):
            stacked = torch.stack(group)  # [T, *shape]
            total = total + len(group) * stacked.square().sum() - stacked.sum(dim=0).square().sum()
        return self.lam * total

    def regularization(self) -> Tensor:
        """The coupling `penalty`."""
        return self.penalty()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """None: each copy belongs to one task (the penalty couples them)."""
        return iter(())


register("coupled", CoupledNetworks)

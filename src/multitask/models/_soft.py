"""Soft parameter sharing: each task's weights are a shared part plus a task deviation, ``W_t = W_s + b_t``."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from multitask.errors import ConfigError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import check_tasks, column
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


def check_strength(lam: float, model: str, *, allow_inf: bool) -> float:
    """``lam`` as a float, ``≥ 0`` (and finite unless ``allow_inf``)."""
    if isinstance(lam, bool) or not isinstance(lam, int | float) or math.isnan(lam) or lam < 0:
        raise ConfigError(f"{model}: lam must be ≥ 0 (0: independent models, ∞: hard sharing); got {lam}")
    if math.isinf(lam) and not allow_inf:
        raise ConfigError(f"{model}: lam must be finite; for λ → ∞ (one network for all tasks) use HardSharing")
    return float(lam)


class _SoftSharedLayer(nn.Module):
    """Shared ``weight``, ``bias`` plus per-task deviations ``weight_deviation``, ``bias_deviation`` (zero at start)."""

    weight: Tensor
    bias: Tensor | None

    def _add_deviations(self, num_tasks: int) -> None:
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 2:
            raise ConfigError(f"{type(self).__name__}: num_tasks must be at least 2; got {num_tasks!r}")
        self.num_tasks = num_tasks
        self.weight_deviation = nn.Parameter(torch.zeros(num_tasks, *self.weight.shape))
        self.bias_deviation = nn.Parameter(torch.zeros(num_tasks, *self.bias.shape)) if self.bias is not None else None

    def task_weight(self, task: int) -> tuple[Tensor, Tensor | None]:
        """Task ``task``'s effective ``(W_s + b_t, bias_s + c_t)``."""
        if not 0 <= task < self.num_tasks:
            raise ConfigError(f"{type(self).__name__}: task index must be in [0, {self.num_tasks}); got {task}")
        bias = None
        if self.bias is not None and self.bias_deviation is not None:
            bias = self.bias + self.bias_deviation[task]
        return self.weight + self.weight_deviation[task], bias

    def squared_deviation(self) -> Tensor:
        """``Σ_t ‖b_t‖²`` over the weight and bias deviations (the coupling term, before ``λ``)."""
        total = self.weight_deviation.square().sum()
        if self.bias_deviation is not None:
            total = total + self.bias_deviation.square().sum()
        return total


class SoftSharedLinear(_SoftSharedLayer):
    r"""A linear layer with per-task weights ``W_t = W_s + b_t``: ``y = x (W_s + b_t)ᵀ + (c_s + c_t)``.

    The deviations start at zero; `soft_sharing_penalty` adds ``λ Σ_t ‖b_t‖²`` over a model's
    soft-shared layers (Evgeniou & Pontil, "Regularized Multi-Task Learning", KDD 2004, Eq. 3-4,
    applied to every layer of a deep network).

    Args:
        in_features: Input size.
        out_features: Output size.
        num_tasks: Number of tasks ``T ≥ 2``.
        bias: Learn a bias (shared plus per-task deviation).
    """

    def __init__(self, in_features: int, out_features: int, num_tasks: int, bias: bool = True) -> None:
        super().__init__()
        base = nn.Linear(in_features, out_features, bias=bias)
        self.weight, self.bias = base.weight, base.bias
        self._add_deviations(num_tasks)

    def forward(self, x: Tensor, task: int) -> Tensor:
        """Apply task ``task``'s weights to ``x`` ``[N, in_features]``."""
        weight, bias = self.task_weight(task)
        return F.linear(x, weight, bias)


class SoftSharedConv2d(_SoftSharedLayer):
    r"""A 2-D convolution with per-task kernels ``W_t = W_s + b_t`` (see `SoftSharedLinear`).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Kernel size.
        num_tasks: Number of tasks ``T ≥ 2``.
        stride: Stride.
        padding: Zero padding.
        bias: Learn a bias (shared plus per-task deviation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        num_tasks: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        base = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.weight, self.bias = base.weight, base.bias
        self.stride, self.padding = stride, padding
        self._add_deviations(num_tasks)

    def forward(self, x: Tensor, task: int) -> Tensor:
        """Apply task ``task``'s kernels to ``x`` ``[N, C, H, W]``."""
        weight, bias = self.task_weight(task)
        return F.conv2d(x, weight, bias, stride=self.stride, padding=self.padding)


def soft_sharing_penalty(module: nn.Module, lam: float) -> Tensor:
    """``λ Σ_layers Σ_t ‖b_t‖²`` over the `SoftSharedLinear`/`SoftSharedConv2d` layers inside ``module``."""
    lam = check_strength(lam, "soft_sharing_penalty", allow_inf=False)
    terms = [layer.squared_deviation() for layer in module.modules() if isinstance(layer, _SoftSharedLayer)]
    if not terms:
        raise ConfigError(f"{type(module).__name__} holds no SoftSharedLinear or SoftSharedConv2d layer")
    return lam * torch.stack(terms).sum()


class SoftSharing(MultiTaskModel):
    r"""Turns any module into ``T`` soft-shared copies: task ``t`` runs it with weights ``W_s + b_t``.

    Every parameter ``W`` of ``module`` becomes the shared part ``W_s``; each task gets a deviation
    ``b_t`` of the same shape (zero at start), and ``ŷ_t = h_t(module(x; W_s + b_t))``. The penalty
    ``λ Σ_t ‖b_t‖²`` (`penalty`, returned by `regularization` so the Trainer adds it) couples the
    copies: ``λ = 0`` leaves ``T`` independent models (any ``W_t`` is reachable at no cost);
    ``λ → ∞`` forces ``b_t = 0``, i.e. hard sharing, and ``lam=math.inf`` is exactly that (no
    deviations are created). Buffers (e.g. batch-norm statistics) are shared.

    Args:
        module: The network to copy; it maps the input column to the heads' features.
        tasks: The tasks (at least two).
        lam: Coupling strength ``λ ≥ 0`` (``math.inf``: hard sharing).
        input_key: Batch column passed to ``module``.

    References:
        Evgeniou & Pontil, "Regularized Multi-Task Learning", KDD 2004 (``w_t = w_0 + v_t``,
        penalty on ``‖v_t‖²``), here for every weight of a deep network.
    """

    reads = frozenset({"features", "tokens", "images"})
    hyperparameters = ("lam",)

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task], *, lam: float = 0.01) -> SoftSharing:
        """The parts' encoder as ``W_s``, with per-task deviations penalised by ``lam`` (`multitask.models.create`)."""
        return cls(parts.encoder(), tasks, lam=lam, input_key=parts.column(cls.__name__))

    def __init__(self, module: nn.Module, tasks: Sequence[Task], *, lam: float, input_key: str = "x") -> None:
        super().__init__()
        self.task_names = check_tasks(tasks, "SoftSharing")
        self.lam = check_strength(lam, "SoftSharing", allow_inf=True)
        self.module = module
        self.input_key = input_key
        self._names = [name for name, _ in module.named_parameters()]
        sizes = list(module.parameters()) if not math.isinf(self.lam) else []
        self.deviations = nn.ModuleDict(
            {task: nn.ParameterList([nn.Parameter(torch.zeros_like(p)) for p in sizes]) for task in self.task_names}
        )
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})

    def _deviations(self, task: str) -> list[nn.Parameter]:
        return list(self.deviations[task].parameters())

    def task_parameters(self, task: str) -> dict[str, Tensor]:
        """Task ``task``'s effective parameters ``{name: W_s + b_t}`` (``W_s`` itself when ``λ = ∞``)."""
        shared = dict(self.module.named_parameters())
        deviations = self._deviations(task)
        if not deviations:
            return dict(shared)
        return {name: shared[name] + deviation for name, deviation in zip(self._names, deviations, strict=True)}

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(module(x; W_s + b_t))}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x = column(batch, self.input_key)
        outputs = {}
        for task in tasks:
            features = functional_call(self.module, self.task_parameters(task), (x,))
            outputs[task] = self.heads[task](features)
        return outputs

    def penalty(self) -> Tensor:
        """``λ Σ_t ‖b_t‖²`` (zero when ``λ`` is 0 or ∞)."""
        deviations = [d for task in self.task_names for d in self._deviations(task)]
        if self.lam == 0 or not deviations:
            return super().regularization()
        return self.lam * torch.stack([d.square().sum() for d in deviations]).sum()

    def regularization(self) -> Tensor:
        """The coupling `penalty`."""
        return self.penalty()

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The shared part ``W_s``: the wrapped module's parameters."""
        return self.module.parameters()


register("soft_sharing", SoftSharing)

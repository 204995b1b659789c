"""A synthetic problem with known task relationships, to check what the analysis tools recover."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from multitask.data import ArrayDataset
from multitask.errors import ConfigError
from multitask.models import MLP
from multitask.tasks import Task


class ReadOut(nn.Module):
    """A head that reads one coordinate of the shared output with a positive scale: ``softplus(ρ) z_k + β``.

    Its scale cannot change sign, so a task cannot flip what it shares with the others (with a free
    linear head, targets ``y`` and ``−y`` would share one feature perfectly and never conflict).
    """

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index
        self.raw_scale = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, z: Tensor) -> Tensor:
        return F.softplus(self.raw_scale + 0.5413) * z[:, self.index] + self.bias  # softplus(0.5413) = 1

    def reset_parameters(self) -> None:
        """Back to scale 1 and bias 0 (called by the baselines' fresh copies)."""
        with torch.no_grad():
            self.raw_scale.zero_()
            self.bias.zero_()


@dataclass(frozen=True)
class SyntheticGroups:
    """Two groups of regression tasks driven by two latent factors, plus one adversarial task.

    Inputs ``x ~ N(0, I_d)``; latent factors ``u = x·a`` and ``v = x·b`` with orthonormal random ``a``,
    ``b``. Group A's tasks are ``y = c_k u + σ ε``, group B's ``y = c_k v + σ ε`` (scales ``c_k`` near
    1), and the adversarial task's target is the negative of the first A task's noiseless target,
    ``y = −c_1 u + σ ε``. The model (`encoder`, `tasks`) is an MLP whose output has one coordinate per
    factor; each task reads its factor's coordinate through a positive scale (`ReadOut`), so the
    adversarial task pulls the shared factor the wrong way. What the analysis should find: positive
    affinity within each group, about zero across groups, negative between the adversarial task and
    group A; negative gradient cosines for the adversarial pair; the grouping {A}, {B}, {adversarial}
    for three models; and negative transfer for the adversarial task.

    Attributes:
        data: Columns ``x`` and one per task.
        group_a: Names of group A's tasks.
        group_b: Names of group B's tasks.
        adversarial: Name of the adversarial task.
        victim: The task whose target it negates.
    """

    data: ArrayDataset
    group_a: tuple[str, ...]
    group_b: tuple[str, ...]
    adversarial: str
    victim: str
    num_features: int
    hidden: tuple[int, ...]

    @property
    def task_names(self) -> list[str]:
        return [*self.group_a, *self.group_b, self.adversarial]

    @property
    def true_groups(self) -> list[tuple[str, ...]]:
        return [self.group_a, self.group_b, (self.adversarial,)]

    def encoder(self) -> MLP:
        """The shared network: ``x`` → hidden layers → one output per latent factor."""
        return MLP(self.num_features, list(self.hidden), 2)

    def tasks(self) -> list[Task]:
        """Fresh regression tasks (mean squared error) with `ReadOut` heads."""
        index = {name: 0 for name in (*self.group_a, self.adversarial)} | {name: 1 for name in self.group_b}
        return [Task(name, ReadOut(index[name]), "regression", metrics=["mse", "r2"]) for name in self.task_names]


def synthetic_task_groups(
    num_samples: int = 400,
    *,
    num_features: int = 20,
    group_sizes: tuple[int, int] = (3, 2),
    noise: float = 1.0,
    hidden: tuple[int, ...] = (16,),
    seed: int = 0,
) -> SyntheticGroups:
    """The problem of `SyntheticGroups`: tasks ``a0, a1, …`` (group A), ``b0, …`` (group B) and ``adv`` (= −a0).

    Args:
        num_samples: Rows.
        num_features: Input dimension ``d`` (≥ 2).
        group_sizes: Number of tasks in groups A and B (each ≥ 1; A's first task is the victim).
        noise: Standard deviation ``σ`` of each target's own noise.
        hidden: Hidden layer sizes of the shared MLP.
        seed: Seed of the factors, inputs and noise.
    """
    if num_features < 2 or min(group_sizes) < 1 or num_samples < 2 or noise < 0:
        raise ConfigError(
            f"need num_features ≥ 2, group sizes ≥ 1, num_samples ≥ 2 and noise ≥ 0; got {num_features}, "
            f"{group_sizes}, {num_samples}, {noise}"
        )
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(num_features, 2, generator=generator))
    x = torch.randn(num_samples, num_features, generator=generator)
    factors = x @ basis  # [N, 2]: u and v
    columns: dict[str, Tensor] = {"x": x}
    group_a = tuple(f"a{k}" for k in range(group_sizes[0]))
    group_b = tuple(f"b{k}" for k in range(group_sizes[1]))
    scales = 0.8 + 0.4 * torch.rand(group_sizes[0] + group_sizes[1], generator=generator)
    for k, name in enumerate(group_a + group_b):
        factor = factors[:, 0] if name in group_a else factors[:, 1]
        columns[name] = scales[k] * factor + noise * torch.randn(num_samples, generator=generator)
    columns["adv"] = -scales[0] * factors[:, 0] + noise * torch.randn(num_samples, generator=generator)
    return SyntheticGroups(ArrayDataset(**columns), group_a, group_b, "adv", group_a[0], num_features, hidden)

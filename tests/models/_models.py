"""Small instances of every sharing scheme, for the tests shared by all of them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from multitask.models import (
    CGC,
    MLP,
    PLE,
    CoupledNetworks,
    CrossStitch,
    DSelectK,
    HardSharing,
    MMoE,
    MultiTaskModel,
    SoftSharing,
)
from multitask.tasks import Task

N, D, H = 6, 5, 4
TASK_NAMES = ("a", "b", "c")


def make_tasks(names: tuple[str, ...] = TASK_NAMES, features: int = H) -> list[Task]:
    return [Task(name, nn.Linear(features, 2), "regression") for name in names]


def expert(in_features: int = D) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, H), nn.Tanh())


BUILDERS: dict[str, Callable[[list[Task]], MultiTaskModel]] = {
    "hard_sharing": lambda tasks: HardSharing(MLP(D, [H]), tasks),
    "mmoe": lambda tasks: MMoE([expert() for _ in range(3)], tasks, in_features=D),
    "omoe": lambda tasks: MMoE([expert() for _ in range(3)], tasks, in_features=D, shared_gate=True),
    "cgc": lambda tasks: CGC(expert, tasks, in_features=D, num_task_experts=2, num_shared_experts=1),
    "ple": lambda tasks: PLE(expert, tasks, in_features=D, num_task_experts=1, num_shared_experts=2, num_levels=3),
    "dselect_k": lambda tasks: DSelectK([expert() for _ in range(5)], tasks, in_features=D, k=2),
    "soft_sharing": lambda tasks: SoftSharing(expert(), tasks, lam=0.1),
    "coupled": lambda tasks: CoupledNetworks(expert(), tasks, lam=0.1),
    "cross_stitch": lambda tasks: CrossStitch([nn.Linear(D, H), nn.Tanh(), nn.Linear(H, H)], tasks),
}


def build(name: str, names: tuple[str, ...] = TASK_NAMES) -> MultiTaskModel:
    torch.manual_seed(0)
    return BUILDERS[name](make_tasks(names))


def batch(n: int = N, seed: int = 1) -> dict[str, Tensor]:
    return {"x": torch.randn(n, D, generator=torch.Generator().manual_seed(seed))}

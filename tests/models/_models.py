"""Small instances of every sharing scheme, for the tests shared by all of them."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from multitask import models
from multitask.models import (
    CGC,
    MLP,
    PLE,
    ConvNet,
    CoupledNetworks,
    CrossStitch,
    DSelectK,
    HardSharing,
    MMoE,
    ModelParts,
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


# Every registered architecture, built by name from small parts (`multitask.models.create`): the contract
# tests run on `names()`, so a new architecture is tested as soon as it is registered.
IMAGE_SHAPE = (3, 8, 8)
SMALL_HYPERPARAMETERS = {
    "num_experts": 3,
    "k": 2,
    "num_task_experts": 1,
    "num_shared_experts": 1,
    "num_levels": 2,
    "rank": 2,
    "freeze_encoder": False,  # the contract tests differentiate every parameter
}


def reads_images(name: str) -> bool:
    return "features" not in models.info(name).reads


def parts_for(name: str) -> ModelParts:
    if reads_images(name):
        return ModelParts(
            encoder=lambda: ConvNet(IMAGE_SHAPE[0], [4, H], batch_norm=False),
            in_features=IMAGE_SHAPE[0],
            head=lambda task, width: nn.Linear(width, 2),
            in_shape=IMAGE_SHAPE,
        )
    return ModelParts(
        encoder=lambda: MLP(D, [H]),
        in_features=D,
        expert=expert,
        head=lambda task, width: nn.Linear(width, 2),
    )


def create(name: str, names: tuple[str, ...] = TASK_NAMES) -> MultiTaskModel:
    torch.manual_seed(0)
    info = models.info(name)
    options = {key: value for key, value in SMALL_HYPERPARAMETERS.items() if key in info.hyperparameters}
    return models.create(name, make_tasks(names), parts_for(name), **options)


def input_for(name: str, n: int = N, seed: int = 1) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, *IMAGE_SHAPE) if reads_images(name) else (n, D)
    return {"x": torch.randn(*shape, generator=generator)}

"""A tiny two-task model and data on which the adversarial step's gradients can be worked out by hand."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask import Task
from multitask.data import ArrayDataset
from multitask.models import HardSharing

N, D, H = 5, 3, 4


def data(seed: int = 0) -> dict[str, ArrayDataset]:
    generator = torch.Generator().manual_seed(seed)
    return {
        name: ArrayDataset(x=torch.randn(N, D, generator=generator), **{name: torch.randn(N, generator=generator)})
        for name in ("a", "b")
    }


def build(seed: int = 0) -> tuple[HardSharing, list[Task], nn.Linear]:
    torch.manual_seed(seed)
    tasks = [Task(name, nn.Linear(H, 1), "regression") for name in ("a", "b")]
    return HardSharing(nn.Linear(D, H), tasks), tasks, nn.Linear(H, 2)


@dataclass
class Gradients:
    encoder: list[Tensor]
    heads: dict[str, list[Tensor]]


def task_loss(model: HardSharing, batches: dict[str, ArrayDataset]) -> Tensor:
    total = torch.zeros(())
    for name, dataset in batches.items():
        out = model.heads[name](model.encoder(dataset.columns["x"])).squeeze(-1)
        total = total + F.mse_loss(out, dataset.columns[name])
    return total


def discriminator_loss(model: HardSharing, discriminator: nn.Module, batches: dict[str, ArrayDataset]) -> Tensor:
    shared = torch.cat([model.encoder(d.columns["x"]) for d in batches.values()])
    labels = torch.cat([torch.full((len(d),), t, dtype=torch.long) for t, d in enumerate(batches.values())])
    return F.cross_entropy(discriminator(shared), labels)


def grads(loss: Tensor, module: nn.Module) -> list[Tensor]:
    return [g.detach() for g in torch.autograd.grad(loss, list(module.parameters()), retain_graph=True)]


def deltas(before: nn.Module, after: nn.Module) -> list[Tensor]:
    """``before − after`` per parameter: the gradient, for one plain SGD step with learning rate 1."""
    return [(b - a).detach() for b, a in zip(before.parameters(), after.parameters(), strict=True)]


def snapshot(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module)

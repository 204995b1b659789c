"""Synthetic multi-input data whose inputs carry an obvious task marker (a scaled one-hot of the task)."""

from __future__ import annotations

import torch
from torch import nn

from multitask import Task
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing

T, D = 3, 6  # tasks; informative features (then T marker columns)


def marked_data(seed: int, n: int = 300) -> dict[str, ArrayDataset]:
    """Task t: ``x = [z; 3 e_t]`` with ``z ~ N(0, I_6)``; label ``1[w·z > 0]`` with the same ``w`` for every task."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(D, generator=torch.Generator().manual_seed(99))
    data = {}
    for t in range(T):
        z = torch.randn(n, D, generator=generator)
        marker = torch.zeros(n, T)
        marker[:, t] = 3.0
        data[f"t{t}"] = ArrayDataset(x=torch.cat([z, marker], dim=1), **{f"t{t}": (z @ w > 0).float()})
    return data


def marked_model(seed: int = 0) -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(seed)
    tasks = [Task(f"t{t}", nn.Linear(16, 1), "binary") for t in range(T)]
    return HardSharing(MLP(D + T, [32, 16]), tasks), tasks

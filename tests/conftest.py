"""Shared fixtures: small synthetic multi-task problems with known structure."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from multitask import Task
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing

# The tests train tiny models: one intra-op thread is fastest for them, and it keeps the suite's
# speed independent of other load on the machine (spinning OpenMP threads collapse under contention).
# Set through the environment too, so that the subprocesses the CLI and resume tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def make_two_task_data(n: int = 1200, seed: int = 0) -> ArrayDataset:
    """A binary and a regression task driven by the same few input directions (so sharing helps)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=generator)
    signal = x[:, 0] + 0.5 * x[:, 1]
    binary = (signal + 0.1 * torch.randn(n, generator=generator) > 0).float()
    regression = 2.0 * signal - x[:, 2] + 0.1 * torch.randn(n, generator=generator)
    return ArrayDataset(x=x, cls=binary, reg=regression)


def make_tasks(hidden: int = 16) -> list[Task]:
    return [Task("cls", nn.Linear(hidden, 1), "binary"), Task("reg", nn.Linear(hidden, 1), "regression")]


def make_model(tasks: list[Task], hidden: int = 16, seed: int = 0) -> HardSharing:
    torch.manual_seed(seed)
    for task in tasks:
        for layer in task.head.modules():
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
    return HardSharing(MLP(8, [32, hidden]), tasks)


@pytest.fixture
def two_task_data() -> ArrayDataset:
    return make_two_task_data()

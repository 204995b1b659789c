"""A small version of the GradNorm paper's toy regression: GradNorm's worst normalised task loss beats EW's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.data import gradnorm_regression
from multitask.models import HardSharing
from multitask.weighting import EW, GradNorm, Weighting


def _worst_loss_ratio(weighting: Weighting, seed: int, epochs: int, samples: int, width: int) -> float:
    scales = [1.0, 10.0, 100.0]
    data = gradnorm_regression(scales, samples, num_features=50, num_outputs=20, seed=seed)
    torch.manual_seed(seed)
    tasks = [Task(f"task{i}", nn.Linear(width, 20), "regression") for i in range(len(scales))]
    layers: list[nn.Module] = []
    for index in range(4):
        layers += [nn.Linear(50 if index == 0 else width, width), nn.ReLU()]
    trainer = Trainer(
        HardSharing(nn.Sequential(*layers), tasks),
        tasks,
        strategy=Strategy(weighting),
        max_epochs=epochs,
        batch_size=50,
        progress=False,
        seed=seed,
    )
    initial = trainer.evaluate(data)
    trainer.fit(data)
    final = trainer.evaluate(data)
    return max(final[name]["loss"] / initial[name]["loss"] for name in initial)


@pytest.mark.parametrize("seed", [0, 1])
def test_gradnorm_worst_normalised_loss_is_lower_than_ew(seed: int) -> None:
    ew = _worst_loss_ratio(EW(), seed, epochs=15, samples=500, width=64)
    gradnorm = _worst_loss_ratio(GradNorm(alpha=0.12), seed, epochs=15, samples=500, width=64)
    assert gradnorm < ew


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradnorm_beats_ew_clearly_on_the_bigger_toy(seed: int) -> None:
    ew = _worst_loss_ratio(EW(), seed, epochs=30, samples=1000, width=64)
    gradnorm = _worst_loss_ratio(GradNorm(alpha=0.12), seed, epochs=30, samples=1000, width=64)
    assert gradnorm < 0.8 * ew

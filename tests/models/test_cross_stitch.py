"""Cross-stitch networks: initial units, identity units give independent columns, layers of any kind."""

from __future__ import annotations

import pytest
import torch
from _models import TASK_NAMES, D, H, N, batch, make_tasks
from torch import nn

from multitask.errors import ConfigError
from multitask.models import CrossStitch


def test_units_start_as_convex_combinations() -> None:
    model = CrossStitch([nn.Linear(D, H), nn.Linear(H, H)], make_tasks(), self_weight=0.8)
    assert len(model.units) == 2
    for alpha in model.units:
        torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
        torch.testing.assert_close(alpha.diagonal(), torch.full((3,), 0.8))
    assert sum(p.numel() for p in model.parameters()) == 3 * (D * H + H + H * H + H) + 2 * 9 + 3 * (H * 2 + 2)


def test_identity_units_give_independent_columns() -> None:
    torch.manual_seed(0)
    model = CrossStitch([nn.Linear(D, H), nn.Tanh(), nn.Linear(H, H)], make_tasks())
    with torch.no_grad():
        for alpha in model.units:
            alpha.copy_(torch.eye(3))
        model.columns["b"][0].weight.mul_(2.0)  # type: ignore[index]
    outputs = model(batch())
    for name in TASK_NAMES:
        column = nn.Sequential(*model.columns[name])  # type: ignore[arg-type]
        torch.testing.assert_close(outputs[name], model.heads[name](column(batch()["x"])))


def test_mixing_follows_the_units() -> None:
    model = CrossStitch([nn.Linear(D, H)], make_tasks(), self_weight=1 / 3)  # equal rows: every task sees the mean
    outputs = model(batch())
    x = batch()["x"]
    mean = torch.stack([model.columns[name][0](x) for name in TASK_NAMES]).mean(dim=0)  # type: ignore[index]
    torch.testing.assert_close(outputs["c"], model.heads["c"](mean))


def test_convolutional_columns() -> None:
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())]
    model = CrossStitch(layers, make_tasks())
    outputs = model({"x": torch.randn(N, 3, 8, 8)})
    assert outputs["a"].shape == (N, 2)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="at least one layer"):
        CrossStitch([], make_tasks())
    with pytest.raises(ConfigError, match="self_weight"):
        CrossStitch([nn.Linear(D, H)], make_tasks(), self_weight=1.5)

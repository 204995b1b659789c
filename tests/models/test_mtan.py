"""MTAN: per-task attention over a shared backbone's feature maps, for classification and dense prediction."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from multitask.errors import ConfigError
from multitask.models import MTAN
from multitask.tasks import Task

N = 3


def backbone() -> list[nn.Module]:
    """An encoder (two stages, halving the resolution) and a decoder stage (doubling it back)."""
    return [
        nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(6, 5, 3, padding=1), nn.ReLU()),
    ]


def make_tasks() -> list[Task]:
    classify = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))
    segment = nn.Conv2d(5, 2, 1)  # two classes per pixel
    return [Task("label", classify, "multiclass"), Task("depth", segment, "regression")]


def make_model() -> MTAN:
    torch.manual_seed(0)
    return MTAN(backbone(), make_tasks(), in_shape=(3, 8, 8))


def batch() -> dict[str, torch.Tensor]:
    return {"x": torch.randn(N, 3, 8, 8, generator=torch.Generator().manual_seed(0))}


def test_classification_and_dense_outputs() -> None:
    model = make_model()
    outputs = model(batch())
    assert outputs["label"].shape == (N, 4) and outputs["depth"].shape == (N, 2, 8, 8)
    assert [size for size in model.sizes] == [(4, 8, 8), (6, 4, 4), (5, 8, 8)]


def test_parameter_split_and_gradients() -> None:
    model = make_model()
    backbone_count = sum(p.numel() for p in model.blocks.parameters())
    assert sum(p.numel() for p in model.shared_parameters()) == backbone_count
    for task, other in (("label", "depth"), ("depth", "label")):
        model.zero_grad()
        model(batch(), [task])[task].square().sum().backward()
        assert all(p.grad is not None for p in model.attention[task].parameters())
        assert all(p.grad is None for p in model.attention[other].parameters())
        assert all(p.grad is None for p in model.heads[other].parameters())
        assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.blocks.parameters())


def test_masks_scale_the_shared_features() -> None:
    model = make_model().eval()
    with torch.no_grad():  # a mask of exactly 1 everywhere: the task sees the shared features unchanged
        for modules in model.attention.values():
            for attention in modules:
                attention[-2].bias.fill_(1e4)  # type: ignore[index]
    shared = nn.Sequential(*model.blocks)(batch()["x"])
    torch.testing.assert_close(model(batch(), ["depth"])["depth"], model.heads["depth"](shared))


def test_bad_construction() -> None:
    with pytest.raises(ConfigError, match="at least two tasks"):
        MTAN(backbone(), make_tasks()[:1], in_shape=(3, 8, 8))
    with pytest.raises(ConfigError, match="at least one backbone block"):
        MTAN([], make_tasks(), in_shape=(3, 8, 8))
    with pytest.raises(ConfigError, match=r"block 0 fails on an input of shape \(2, 5, 8, 8\)"):
        MTAN(backbone(), make_tasks(), in_shape=(5, 8, 8))
    with pytest.raises(ConfigError, match=r"feature map \[N, C, H, W\]"):
        MTAN([nn.Flatten()], make_tasks(), in_shape=(3, 8, 8))

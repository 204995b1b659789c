"""IMTL-L: learnable scales whose optimum makes every scaled loss equal to one."""

from __future__ import annotations

import torch
from _helpers import context

from multitask.weighting import IMTLL


def test_formula_and_optimum() -> None:
    weighting = IMTLL()
    weighting.setup(["a", "b"])
    losses = torch.tensor([0.25, 4.0])
    assert weighting(losses).item() == 4.25  # s = 0: Σ L
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    assert torch.allclose(weighting.log_scales.detach().exp() * losses, torch.ones(2), rtol=1e-3)


def test_absent_task_scale_gets_no_gradient() -> None:
    weighting = IMTLL()
    weighting.setup(["a", "b"])
    weighting(torch.tensor([3.0, 0.0]), context(True, False)).backward()
    assert weighting.log_scales.grad is not None and weighting.log_scales.grad[1] == 0

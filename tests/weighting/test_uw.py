"""Uncertainty weighting: its formula, both forms, and the closed-form optimum σ² = L (2L for classification)."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import context

from multitask.errors import ConfigError
from multitask.weighting import UW


def test_objective_at_unit_variance_and_its_formula() -> None:
    weighting = UW(forms=["regression", "classification"])
    weighting.setup(["depth", "semantic"])
    losses = torch.tensor([2.0, 3.0])
    assert weighting(losses).item() == pytest.approx(0.5 * 2.0 + 3.0)  # s = 0: ½L + L, penalty 0
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([math.log(4.0), math.log(2.0)]))
    expected = 2.0 / (2 * 4.0) + 0.5 * math.log(4.0) + 3.0 / 2.0 + 0.5 * math.log(2.0)
    assert weighting(losses).item() == pytest.approx(expected)


@pytest.mark.parametrize(("form", "factor"), [("regression", 1.0), ("classification", 2.0)])
def test_optimum_variance_for_a_fixed_loss(form: str, factor: float) -> None:
    weighting = UW(forms=[form, form])
    weighting.setup(["a", "b"])
    losses = torch.tensor([0.5, 3.0])
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(1500):
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    assert torch.allclose(weighting.log_variances.detach().exp(), factor * losses, rtol=1e-3)


def test_absent_task_gets_no_gradient_on_its_log_variance() -> None:
    weighting = UW()
    weighting.setup(["a", "b"])
    weighting(torch.tensor([3.0, 0.0]), context(True, False)).backward()
    assert weighting.log_variances.grad is not None
    assert weighting.log_variances.grad[1] == 0 and weighting.log_variances.grad[0] != 0


def test_parameters_go_to_the_trainers_optimiser() -> None:
    weighting = UW()
    weighting.setup(["a", "b"])
    assert [p.shape for p in weighting.parameters()] == [torch.Size([2])]


def test_bad_forms_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="forms must be 'regression' or 'classification'; got \\['gaussian'\\]"):
        UW(forms=["regression", "gaussian"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="forms has 1 entry but there are 2 tasks"):
        UW(forms=["regression"]).setup(["a", "b"])

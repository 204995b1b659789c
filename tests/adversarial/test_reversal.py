"""The gradient reversal layer and the schedules of its coefficient."""

from __future__ import annotations

import math

import pytest
import torch

from multitask.adversarial import ConstantSchedule, DANNSchedule, GradientReversal, reverse_gradient
from multitask.errors import ConfigError


@pytest.mark.parametrize("coefficient", [0.0, 0.37, 1.0, 5.5])
def test_backward_is_exactly_minus_lambda_times_the_incoming_gradient(coefficient: float) -> None:
    x = torch.randn(4, 3, requires_grad=True)
    incoming = torch.randn(4, 3)
    y = GradientReversal(coefficient)(x)
    assert torch.equal(y, x)
    y.backward(incoming)
    assert x.grad is not None
    assert torch.equal(x.grad, -coefficient * incoming)


def test_the_function_reverses_inside_a_longer_chain() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    (reverse_gradient(3 * x, 0.5) ** 2).sum().backward()  # d/dx (3x)² = 18x, reversed and halved: −9x
    assert x.grad is not None
    assert torch.equal(x.grad, torch.tensor([-9.0, -18.0]))


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_a_negative_or_non_finite_coefficient_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match="≥ 0"):
        GradientReversal(bad)
    with pytest.raises(ConfigError, match="≥ 0"):
        reverse_gradient(torch.ones(2), bad)
    with pytest.raises(ConfigError, match="≥ 0"):
        ConstantSchedule(bad)


def test_dann_schedule_matches_the_papers_formula() -> None:
    schedule = DANNSchedule()  # γ = 10
    assert schedule(0.0) == 0.0
    assert schedule(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661
    assert schedule(0.5) == pytest.approx(0.986614, abs=1e-6)
    assert schedule(1.0) == pytest.approx(0.999909, abs=1e-6)
    assert DANNSchedule(gamma=1.0, maximum=0.5)(1.0) == pytest.approx(0.5 * (2 / (1 + math.exp(-1)) - 1))
    values = [schedule(p / 10) for p in range(11)]
    assert values == sorted(values)  # rises monotonically from 0 towards the maximum


def test_schedules_refuse_progress_outside_0_1_and_a_bad_gamma() -> None:
    with pytest.raises(ConfigError, match=r"progress must be in \[0, 1\]"):
        DANNSchedule()(1.5)
    with pytest.raises(ConfigError, match="gamma"):
        DANNSchedule(gamma=0.0)
    assert ConstantSchedule(0.25)(0.7) == 0.25

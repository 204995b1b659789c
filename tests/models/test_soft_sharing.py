"""Soft sharing (`W_t = W_s + b_t`) and coupled networks (Duong et al.): layers, penalties, the λ limits."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models import (
    CoupledNetworks,
    HardSharing,
    MultiTaskModel,
    SoftSharedConv2d,
    SoftSharedLinear,
    SoftSharing,
    soft_sharing_penalty,
)
from multitask.tasks import Task

NAMES = ("a", "b", "c")


def regression_problem(n: int = 200, d: int = 4, seed: int = 0) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """Shared inputs, one linear target per task; returns X, targets and the per-task least-squares weights."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    weights = torch.randn(len(NAMES), d, generator=generator, dtype=torch.float64)
    targets = {
        name: x @ w + 0.1 * torch.randn(n, generator=generator, dtype=torch.float64)
        for name, w in zip(NAMES, weights, strict=True)
    }
    solutions = torch.stack([torch.linalg.lstsq(x, targets[name][:, None]).solution[:, 0] for name in NAMES])
    return x, targets, solutions


def linear_tasks() -> list[Task]:
    return [Task(name, nn.Identity(), "regression") for name in NAMES]


def fit(model: MultiTaskModel, x: Tensor, targets: dict[str, Tensor]) -> None:
    """Minimise Σ_t mean squared error + the model's regularization to convergence (a convex quadratic)."""
    model.double()
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1,
        max_iter=500,
        tolerance_grad=1e-12,
        tolerance_change=1e-16,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        outputs = model({"x": x})
        loss = sum((outputs[t][:, 0] - targets[t]).square().mean() for t in NAMES) + model.regularization()
        assert isinstance(loss, Tensor)
        loss.backward()
        return loss

    for _ in range(10):  # LBFGS restarts until the quadratic is solved to round-off
        optimizer.step(closure)


def soft_weights(model: SoftSharing) -> Tensor:
    return torch.stack([model.task_parameters(t)["weight"][0] for t in NAMES])


def coupled_weights(model: CoupledNetworks) -> Tensor:
    return torch.stack([model.networks[t].weight[0] for t in NAMES])  # type: ignore[index]


@pytest.mark.parametrize("kind", ["soft", "coupled"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lambda_zero_gives_independent_models(kind: str, seed: int) -> None:
    x, targets, solutions = regression_problem()
    torch.manual_seed(seed)  # the starting point: the test must not depend on what ran before it
    module = nn.Linear(4, 1, bias=False)
    if kind == "soft":
        soft = SoftSharing(module, linear_tasks(), lam=0.0)
        fit(soft, x, targets)
        found = soft_weights(soft)
    else:
        coupled = CoupledNetworks(module, linear_tasks(), lam=0.0)
        fit(coupled, x, targets)
        found = coupled_weights(coupled)
    torch.testing.assert_close(found, solutions, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["soft", "coupled"])
def test_large_lambda_gives_one_shared_model(kind: str) -> None:
    x, targets, solutions = regression_problem()
    pooled = solutions.mean(dim=0)  # with shared inputs the pooled least-squares fit is the mean of the per-task fits
    module = nn.Linear(4, 1, bias=False)
    if kind == "soft":
        soft = SoftSharing(module, linear_tasks(), lam=1e5)
        fit(soft, x, targets)
        found = soft_weights(soft)
    else:
        coupled = CoupledNetworks(module, linear_tasks(), lam=1e5)
        fit(coupled, x, targets)
        found = coupled_weights(coupled)
    torch.testing.assert_close(found, pooled.expand(len(NAMES), -1), atol=1e-3, rtol=0)


def test_infinite_lambda_is_exactly_hard_sharing() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
    tasks = [Task(name, nn.Linear(3, 1), "regression") for name in NAMES]
    soft = SoftSharing(encoder, tasks, lam=math.inf)
    hard = HardSharing(encoder, tasks)
    batch = {"x": torch.randn(7, 4)}
    assert len(list(soft.parameters())) == len(list(hard.parameters()))
    for name in NAMES:
        torch.testing.assert_close(soft(batch)[name], hard(batch)[name])
    assert soft.regularization().item() == 0.0


def test_soft_sharing_penalty_and_parameter_count() -> None:
    module = nn.Linear(4, 3)
    model = SoftSharing(module, linear_tasks(), lam=0.5)
    assert sum(p.numel() for p in model.parameters()) == (1 + len(NAMES)) * (4 * 3 + 3)
    assert model.penalty().item() == 0.0
    with torch.no_grad():
        model.deviations["b"][0].fill_(1.0)  # weight deviation of task b: 12 ones
    assert model.penalty().item() == pytest.approx(0.5 * 12)
    assert model.regularization().item() == model.penalty().item()


def test_coupled_penalty_is_the_sum_of_pairwise_distances() -> None:
    model = CoupledNetworks(nn.Linear(2, 2), linear_tasks(), lam=2.0)
    with torch.no_grad():
        for i, name in enumerate(NAMES):
            for p in model.networks[name].parameters():
                p.normal_(generator=torch.Generator().manual_seed(i))
    params = {name: torch.cat([p.flatten() for p in model.networks[name].parameters()]) for name in NAMES}
    expected = sum((params[t] - params[u]).square().sum() for i, t in enumerate(NAMES) for u in NAMES[i + 1 :])
    torch.testing.assert_close(model.penalty(), 2.0 * expected)


def test_penalty_pulls_deviations_to_zero_in_a_training_loop() -> None:
    x, targets, _ = regression_problem()
    model = SoftSharing(nn.Linear(4, 1, bias=False), linear_tasks(), lam=1.0).double()
    with torch.no_grad():
        for name in NAMES:
            model.deviations[name][0].fill_(3.0)
    start = model.penalty().item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        outputs = model({"x": x})
        objective = sum((outputs[t][:, 0] - targets[t]).square().mean() for t in NAMES) + model.regularization()
        assert isinstance(objective, Tensor)
        objective.backward()
        optimizer.step()
    assert model.penalty().item() < 0.1 * start


@pytest.mark.parametrize("lam", [-1.0, math.nan])
def test_negative_lambda_is_rejected(lam: float) -> None:
    for cls in (SoftSharing, CoupledNetworks):
        with pytest.raises(ConfigError, match="lam must be ≥ 0"):
            cls(nn.Linear(2, 2), linear_tasks(), lam=lam)
    with pytest.raises(ConfigError, match="lam must be ≥ 0"):
        soft_sharing_penalty(SoftSharedLinear(2, 2, num_tasks=2), lam)


def test_coupled_networks_reject_infinite_lambda() -> None:
    with pytest.raises(ConfigError, match="HardSharing"):
        CoupledNetworks(nn.Linear(2, 2), linear_tasks(), lam=math.inf)


def test_soft_shared_linear_layer() -> None:
    layer = SoftSharedLinear(4, 3, num_tasks=2)
    assert sum(p.numel() for p in layer.parameters()) == 3 * (4 * 3 + 3)
    x = torch.randn(5, 4)
    torch.testing.assert_close(layer(x, 0), layer(x, 1))  # deviations start at zero
    with torch.no_grad():
        layer.weight_deviation[1].fill_(1.0)
    assert layer(x, 0).shape == (5, 3)
    assert layer.squared_deviation().item() == 12.0
    assert soft_sharing_penalty(nn.Sequential(layer), 0.1).item() == pytest.approx(1.2)
    layer(x, 1).sum().backward()
    assert layer.weight_deviation.grad is not None
    assert bool(layer.weight_deviation.grad[0].eq(0).all()) and bool(layer.weight_deviation.grad[1].ne(0).any())


def test_soft_shared_conv2d_layer() -> None:
    layer = SoftSharedConv2d(3, 8, 3, num_tasks=3, padding=1)
    assert layer(torch.randn(2, 3, 10, 10), 2).shape == (2, 8, 10, 10)
    assert sum(p.numel() for p in layer.parameters()) == 4 * (8 * 3 * 3 * 3 + 8)


def test_soft_shared_layers_reject_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="num_tasks must be at least 2"):
        SoftSharedLinear(2, 2, num_tasks=1)
    with pytest.raises(ConfigError, match="task index"):
        SoftSharedLinear(2, 2, num_tasks=2)(torch.randn(1, 2), 2)
    with pytest.raises(ConfigError, match="no SoftSharedLinear"):
        soft_sharing_penalty(nn.Linear(2, 2), 1.0)

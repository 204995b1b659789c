"""Regularisers: penalty values, proximal operators (against their closed forms), proximal training, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from multitask.errors import ConfigError
from multitask.regularizers import L1, L2, L21, TraceNorm


def test_penalty_values() -> None:
    a, b = torch.tensor([[3.0, 0.0], [-1.0, 2.0]]), torch.tensor([[4.0, 0.0], [0.0, 0.0]])
    assert L1([a], 0.5).penalty().item() == pytest.approx(0.5 * 6)
    assert L2([a, b], 1.0).penalty().item() == pytest.approx(14 + 16)
    # W = [[3, 0, -1, 2], [4, 0, 0, 0]]: column norms 5, 0, 1, 2
    assert L21([a, b], 2.0).penalty().item() == pytest.approx(2 * 8)
    expected = torch.linalg.svdvals(torch.stack([a.flatten(), b.flatten()])).sum()
    assert TraceNorm([a, b], 1.0).penalty().item() == pytest.approx(expected.item())


def test_gradient_mode_adds_the_penalty_and_proximal_mode_does_not() -> None:
    w = nn.Parameter(torch.ones(3))
    assert L1([w], 0.1).objective_term().item() == pytest.approx(0.3)
    assert L1([w], 0.1, proximal=True).objective_term().item() == 0.0
    before = w.detach().clone()
    L1([w], 0.1).step(1.0)  # gradient mode: step is a no-op
    torch.testing.assert_close(w.detach(), before)


def test_proximal_operators_match_their_closed_forms() -> None:
    x = torch.tensor([1.5, -0.2, -3.0, 0.05])
    t = x.clone()
    L1([t], 1.0, proximal=True).step(0.5)
    torch.testing.assert_close(t, torch.tensor([1.0, 0.0, -2.5, 0.0]))
    t = x.clone()
    L2([t], 1.0, proximal=True).step(0.5)
    torch.testing.assert_close(t, x / 2)
    a, b = torch.tensor([3.0, 0.1]), torch.tensor([4.0, 0.0])
    L21([a, b], 1.0, proximal=True).step(1.0)  # column norms 5 and 0.1: scaled by 0.8, and dropped
    torch.testing.assert_close(torch.stack([a, b]), torch.tensor([[2.4, 0.0], [3.2, 0.0]]))


def test_trace_norm_prox_thresholds_singular_values() -> None:
    generator = torch.Generator().manual_seed(0)
    rows = [torch.randn(6, generator=generator) for _ in range(4)]
    before = torch.linalg.svdvals(torch.stack(rows))
    TraceNorm(rows, 1.0, proximal=True).step(float(before[1]))  # keeps only the largest singular value
    after = torch.linalg.svdvals(torch.stack(rows))
    assert after[0].item() == pytest.approx((before[0] - before[1]).item(), rel=1e-4)
    assert after[1:].max().item() < 1e-5


def test_proximal_l21_training_selects_the_shared_features() -> None:
    """Two regression tasks using the first 2 of 10 inputs: proximal L2,1 zeroes the 8 others for both tasks."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(300, 10, generator=generator)
    heads = [nn.Linear(10, 1, bias=False) for _ in range(2)]
    targets = [x[:, 0] - 2 * x[:, 1], 3 * x[:, 0] + x[:, 1]]
    regularizer = L21([h.weight for h in heads], 0.05, proximal=True)
    optimizer = torch.optim.SGD([h.weight for h in heads], lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss = sum((h(x)[:, 0] - y).square().mean() for h, y in zip(heads, targets, strict=True))
        assert isinstance(loss, torch.Tensor)
        (loss + regularizer.objective_term()).backward()
        optimizer.step()
        regularizer.step(0.05)
    weights = torch.cat([h.weight.detach() for h in heads])
    assert bool((weights[:, 2:] == 0).all())
    assert bool((weights[:, :2].abs() > 0.5).all())


@pytest.mark.parametrize("alpha", [-1.0, math.inf, math.nan])
def test_bad_alpha(alpha: float) -> None:
    with pytest.raises(ConfigError, match="alpha must be a finite number ≥ 0"):
        L1([torch.zeros(2)], alpha)


def test_bad_tensors() -> None:
    with pytest.raises(ConfigError, match="at least one tensor"):
        L2([], 1.0)
    with pytest.raises(ConfigError, match="at least two"):
        L21([torch.zeros(2)], 1.0)
    with pytest.raises(ConfigError, match=r"same shape; got \[\(2,\), \(3,\)\]"):
        TraceNorm([torch.zeros(2), torch.zeros(3)], 1.0)


# ----- composed into a Strategy and trained by the Trainer -----


def test_strategy_regularizer_reaches_shared_parameters_with_and_without_aggregation() -> None:
    from conftest import make_model, make_tasks, make_two_task_data
    from multitask import Strategy, Trainer
    from multitask.aggregation import Sum
    from multitask.regularizers import L2 as L2Penalty

    data = make_two_task_data(256)

    def train(aggregation: bool, alpha: float) -> list[torch.Tensor]:
        tasks = make_tasks()
        model = make_model(tasks)
        penalty = L2Penalty(list(model.shared_parameters()), alpha)
        strategy = Strategy(aggregation=Sum() if aggregation else None, regularizers=[penalty])
        Trainer(
            model,
            tasks,
            strategy=strategy,
            max_epochs=1,
            batch_size=64,
            shuffle=False,
            progress=False,
            optimizer=lambda p: torch.optim.SGD(p, lr=0.05),
        ).fit(data)
        return [p.detach().clone() for p in model.shared_parameters()]

    # Sum's update is EW's gradient, so both paths must take the same regularised steps
    for plain, aggregated in zip(train(False, 0.5), train(True, 0.5), strict=True):
        torch.testing.assert_close(plain, aggregated, atol=1e-6, rtol=1e-5)
    # and the penalty is really there: a strong L2 shrinks the shared weights
    shrunk, free = train(True, 5.0), train(True, 0.0)
    assert sum(p.norm() for p in shrunk) < 0.9 * sum(p.norm() for p in free)


def test_proximal_regularizer_gives_exact_zeros_through_the_trainer() -> None:
    from conftest import make_model, make_tasks, make_two_task_data
    from multitask import Strategy, Trainer
    from multitask.regularizers import L1 as L1Penalty

    tasks = make_tasks()
    model = make_model(tasks)
    first_layer = model.encoder[0].weight
    strategy = Strategy(regularizers=[L1Penalty([first_layer], 0.5, proximal=True)])
    Trainer(
        model,
        tasks,
        strategy=strategy,
        max_epochs=2,
        batch_size=64,
        progress=False,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1),  # prox step size = lr: threshold 0.05 a step
    ).fit(make_two_task_data(512))
    assert (first_layer == 0).float().mean() > 0.5  # soft-thresholding sets most weights exactly to zero


def test_strategy_rejects_what_is_not_a_regularizer() -> None:
    from multitask import Strategy

    with pytest.raises(ConfigError, match="regularizers must be"):
        Strategy(regularizers=[object()])  # type: ignore[list-item]

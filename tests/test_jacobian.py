"""The Jacobian engine: batched rows equal the loop's, chunking, the loud fallback, unused tasks, the Gramian."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, ShapeError
from multitask.jacobian import JacobianEngine, gramian, jacobian


def _problem(num_tasks: int = 4) -> tuple[Tensor, list[nn.Parameter]]:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 8))
    heads = [nn.Linear(8, 1) for _ in range(num_tasks)]
    features = encoder(torch.randn(32, 6))
    losses = torch.stack([head(features).pow(2).mean() for head in heads])
    return losses, list(encoder.parameters())


def _loop_reference(losses: Tensor, parameters: list[nn.Parameter]) -> Tensor:
    rows = [torch.autograd.grad(loss, parameters, retain_graph=True) for loss in losses]
    return torch.stack([torch.cat([g.flatten() for g in row]) for row in rows])


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 10])
def test_batched_rows_equal_separate_backward_passes(chunk_size: int | None) -> None:
    losses, parameters = _problem()
    expected = _loop_reference(losses, parameters)
    torch.testing.assert_close(jacobian(losses, parameters, chunk_size=chunk_size), expected)
    torch.testing.assert_close(JacobianEngine(batched=False).jacobian(losses, parameters), expected)


def test_gramian_is_j_jt_in_float64() -> None:
    losses, parameters = _problem()
    rows = _loop_reference(losses, parameters).double()
    result = gramian(losses, parameters)
    assert result.dtype == torch.float64
    torch.testing.assert_close(result, rows @ rows.T)


class _NoVmap(torch.autograd.Function):
    """An op with a custom backward and no vmap rule: batched backward fails through it."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:  # type: ignore[override]
        return x * 2

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return torch.as_tensor(grad.detach().numpy() * 2)  # through NumPy: not vmappable


def test_falls_back_to_a_loop_once_and_says_so() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(5, 5)
    features = _NoVmap.apply(layer(torch.randn(8, 5)))
    losses = torch.stack([features[:, 0].pow(2).mean(), features[:, 1].abs().mean(), features.sum()])
    engine = JacobianEngine(batched=True)
    with pytest.warns(RuntimeWarning, match="falling back to a loop"):
        result = engine.jacobian(losses, list(layer.parameters()))
    assert engine.fallback_reason is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        again = engine.jacobian(losses, list(layer.parameters()))
    torch.testing.assert_close(result, again)
    torch.testing.assert_close(result, _loop_reference(losses, list(layer.parameters())))


def test_a_task_that_ignores_the_parameters_gets_a_zero_row_and_a_warning() -> None:
    losses, parameters = _problem(2)
    free = nn.Parameter(torch.ones(()))
    losses = torch.cat([losses, (free * 3).reshape(1)])
    with pytest.warns(RuntimeWarning, match=r"row\(s\) \[2\]"):
        result = jacobian(losses, parameters)
    assert bool((result[2] == 0).all()) and bool((result[:2] != 0).any())
    with pytest.warns(RuntimeWarning):
        assert bool((jacobian(torch.zeros(2), parameters) == 0).all())


def test_bad_arguments_are_rejected() -> None:
    losses, parameters = _problem()
    with pytest.raises(ConfigError):
        JacobianEngine(chunk_size=0)
    with pytest.raises(ShapeError):
        jacobian(losses.reshape(2, 2), parameters)
    with pytest.raises(ConfigError, match="no shared parameters"):
        jacobian(losses, [])


@pytest.mark.parametrize("chunk_size", [None, 1])
def test_a_parameter_no_loss_reaches_gets_a_zero_block_with_the_task_dimension(chunk_size: int | None) -> None:
    # autograd's materialize_grads returns zeros_like(parameter) for it, without the batched task dimension
    used, unused = torch.randn(3, requires_grad=True), torch.randn(4, requires_grad=True)
    losses = torch.stack([(used**2).sum(), used.sum()])
    blocks = JacobianEngine(chunk_size).gradients(losses, [used, unused], check_unused=False)
    assert [tuple(b.shape) for b in blocks] == [(2, 3), (2, 4)]
    assert torch.equal(blocks[1], torch.zeros(2, 4))
    torch.testing.assert_close(blocks[0], torch.stack([2 * used.detach(), torch.ones(3)]))


def test_the_default_engine_loops_for_convolutions_on_cpus_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    from multitask import jacobian as module

    module._reported.clear()
    engine = JacobianEngine()
    cpu = torch.device("cpu")
    convolved = nn.Conv2d(1, 2, 3)(torch.randn(2, 1, 5, 5)).sum().reshape(1)
    linear = nn.Linear(3, 2)(torch.randn(4, 3)).sum().reshape(1)
    with caplog.at_level(logging.INFO, logger="multitask"):
        for _ in range(2):
            assert engine.uses_batched(cpu, [convolved]) is False
            assert engine.uses_batched(cpu, [linear]) is True
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "multitask: per-task gradients on cpu (convolutions) by a loop of T backward passes (the faster choice "
        "there; JacobianEngine(batched=...) overrides it)",
        "multitask: per-task gradients on cpu by one batched (vmap) backward pass (the faster choice there; "
        "JacobianEngine(batched=...) overrides it)",
    ]
    assert JacobianEngine(batched=False).uses_batched(cpu, [linear]) is False
    with pytest.raises(ConfigError, match="batched must be"):
        JacobianEngine(batched="yes")  # type: ignore[arg-type]


def test_features_first_rows_equal_the_direct_jacobian() -> None:
    torch.manual_seed(0)
    trunk, heads = nn.Sequential(nn.Linear(4, 6), nn.Tanh()), [nn.Linear(6, 1) for _ in range(3)]
    features = trunk(torch.randn(10, 4))
    losses = torch.stack([head(features).pow(2).mean() for head in heads])
    parameters = list(trunk.parameters())
    direct = JacobianEngine(batched=False).gradients(losses, parameters)
    for batched in (True, False):
        engine = JacobianEngine(batched=batched, chunk_size=2)
        pulled = engine.pull_back([features], engine.feature_gradients(losses, [features]), parameters)
        for a, b in zip(pulled, direct, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)

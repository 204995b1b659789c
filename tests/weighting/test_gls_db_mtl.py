"""GLS and DB-MTL: their gradients equal those of the geometric mean and of the sum of log losses."""

from __future__ import annotations

import torch
from _helpers import context

from multitask.weighting import DBMTL, GLS


def _losses(parameters: torch.Tensor) -> torch.Tensor:
    return torch.stack([parameters[0] ** 2 + 0.1, 5.0 * parameters[1] ** 2, (parameters[0] - parameters[1]) ** 2])


def _gradient_of(scalar: torch.Tensor, parameters: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(scalar, parameters)
    return grad


def test_gls_gradient_equals_the_geometric_mean_gradient() -> None:
    parameters = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    weighting = GLS()
    weighting.setup(["a", "b", "c"])
    value = weighting(_losses(parameters))
    geometric_mean = _losses(parameters).prod() ** (1 / 3)
    assert torch.allclose(value, geometric_mean)
    assert torch.allclose(_gradient_of(value, parameters), _gradient_of(geometric_mean, parameters))


def test_gls_over_present_tasks_only() -> None:
    weighting = GLS()
    weighting.setup(["a", "b", "c"])
    weights = weighting.weights(torch.tensor([4.0, 0.0, 1.0]), context(True, False, True))
    # G = √(4·1) = 2 over the two present tasks: w = G / (2 L)
    assert torch.allclose(weights, torch.tensor([0.25, 0.0, 1.0]))


def test_gls_zero_loss_is_clamped() -> None:
    weighting = GLS(eps=1e-8)
    weighting.setup(["a", "b"])
    weights = weighting.weights(torch.tensor([0.0, 1.0]), context(True, True))
    assert torch.isfinite(weights).all()


def test_db_mtl_gradient_equals_the_sum_of_log_losses_gradient() -> None:
    parameters = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    weighting = DBMTL(eps=1e-8)
    weighting.setup(["a", "b", "c"])
    value = weighting(_losses(parameters))
    reference = (_losses(parameters) + 1e-8).log().sum()
    assert torch.allclose(_gradient_of(value, parameters), _gradient_of(reference, parameters))


def test_db_mtl_weights_are_inverse_losses_and_zero_when_absent() -> None:
    weighting = DBMTL()
    weighting.setup(["a", "b"])
    weights = weighting.weights(torch.tensor([0.5, 0.0]), context(True, False))
    assert torch.allclose(weights, torch.tensor([2.0, 0.0]))

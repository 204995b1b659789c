"""STCH: log-loss warm-up, nadir from the last warm-up epoch, smooth max of normalised log losses."""

from __future__ import annotations

import pytest
import torch
from _helpers import context

from multitask.errors import ConfigError
from multitask.weighting import STCH


def test_warmup_then_smooth_tchebycheff_on_hand_computed_losses() -> None:
    weighting = STCH(mu=1.0, warmup_epochs=1, eps=1e-12)
    weighting.setup(["a", "b"])
    warmup = weighting.weights(torch.tensor([2.0, 4.0]), context(True, True, epoch=0))
    assert torch.allclose(warmup, torch.tensor([0.5, 0.25]))  # Σ log L
    weighting.on_epoch_end(0, torch.tensor([1.0, 2.0]))
    assert torch.equal(weighting.nadir, torch.tensor([1.0, 2.0]))
    # f = log(L / n) = log(1, 2): softmax = (1/3, 2/3); w = 2·softmax / L = (2/3, 1/3)
    weights = weighting.weights(torch.tensor([1.0, 4.0]), context(True, True, epoch=1))
    assert torch.allclose(weights, torch.tensor([2 / 3, 1 / 3]))


def test_gradient_equals_the_smooth_tchebycheff_gradient() -> None:
    weighting = STCH(mu=0.3, warmup_epochs=0, eps=1e-12)
    weighting.setup(["a", "b", "c"])
    parameters = torch.tensor([0.4, 1.1, -0.6], dtype=torch.float64, requires_grad=True)
    losses = parameters**2 + torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    value = weighting(losses, context(True, True, True, epoch=0))
    reference = 3 * 0.3 * torch.logsumexp(losses.log() / 0.3, dim=0)
    (grad,) = torch.autograd.grad(value, parameters, retain_graph=True)
    (expected,) = torch.autograd.grad(reference, parameters)
    assert torch.allclose(grad, expected)


def test_absent_task_out_of_the_max_and_nadir_fallback() -> None:
    weighting = STCH(warmup_epochs=1)
    weighting.setup(["a", "b"])
    weighting.on_epoch_end(0, torch.tensor([1.0, float("nan")]))
    assert weighting.nadir.tolist() == [1.0, 1.0]
    weights = weighting.weights(torch.tensor([0.5, 0.0]), context(True, False, epoch=1))
    assert weights[1] == 0 and torch.isfinite(weights).all()


def test_preference_weights_the_normalised_log_losses() -> None:
    mu, preference = 0.5, [0.2, 0.8]
    weighting = STCH(mu=mu, warmup_epochs=0, eps=1e-12, preference=preference)
    weighting.setup(["a", "b"])
    parameters = torch.tensor([0.4, 1.1], dtype=torch.float64, requires_grad=True)
    losses = parameters**2 + torch.tensor([0.1, 0.2], dtype=torch.float64)
    value = weighting(losses, context(True, True, epoch=0))
    lambdas = 2 * torch.tensor(preference, dtype=torch.float64)  # λ = T p: uniform p is the authors' λ = 1
    reference = 2 * mu * torch.logsumexp(lambdas * losses.log() / mu, dim=0)
    (grad,) = torch.autograd.grad(value, parameters, retain_graph=True)
    (expected,) = torch.autograd.grad(reference, parameters)
    assert torch.allclose(grad, expected)
    uniform = STCH(mu=mu, warmup_epochs=0, preference=[0.5, 0.5])
    uniform.setup(["a", "b"])
    default = STCH(mu=mu, warmup_epochs=0)
    default.setup(["a", "b"])
    probe = torch.tensor([0.3, 0.9])
    assert torch.allclose(uniform.weights(probe, context(True, True)), default.weights(probe, context(True, True)))


def test_preference_of_the_wrong_length_or_sum_is_refused() -> None:
    with pytest.raises(ConfigError, match="sum to one"):
        STCH(preference=[0.5, 0.6])
    weighting = STCH(preference=[0.5, 0.5])
    with pytest.raises(ConfigError, match="preference has 2 entries but there are 3 tasks"):
        weighting.setup(["a", "b", "c"])

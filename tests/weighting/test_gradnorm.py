"""GradNorm: the update on a hand-computed case, renormalisation, initial losses and absent tasks."""

from __future__ import annotations

import pytest
import torch
from _helpers import context

from multitask.errors import ConfigError
from multitask.weighting import GradNorm


def _losses(layer: torch.Tensor, scales: tuple[float, float] = (3.0, 0.5)) -> torch.Tensor:
    # L_a = 3 W00², L_b = 0.5 W11²: at W = I, ‖∇_W L_a‖ = 6 and ‖∇_W L_b‖ = 1
    return torch.stack([scales[0] * layer[0, 0] ** 2, scales[1] * layer[1, 1] ** 2])


def test_first_step_on_hand_computed_gradient_norms() -> None:
    layer = torch.eye(2, requires_grad=True)
    weighting = GradNorm(alpha=1.5, lr=0.1)
    weighting.setup(["a", "b"])
    used = weighting.weights(_losses(layer), context(True, True, shared=(layer,)))
    assert torch.equal(used, torch.ones(2))  # this step uses the current weights
    # G = (6, 1), Ḡ = 3.5, r = (1, 1): ∂L_grad/∂w = sign(G − Ḡ)·‖∇L‖ = (6, −1); Adam's first step is −lr·sign
    assert torch.allclose(weighting.loss_weights, torch.tensor([0.9, 1.1]))
    assert weighting.loss_weights.sum().item() == pytest.approx(2.0)
    assert torch.equal(weighting.initial_losses, torch.tensor([3.0, 0.5]))


def test_slow_task_is_pulled_up_by_its_training_rate() -> None:
    # equal gradient norms; task b's loss has not fallen (r_b > r_a), so its weight must grow
    layer = torch.eye(2, requires_grad=True)
    weighting = GradNorm(alpha=1.0, lr=0.05)
    weighting.setup(["a", "b"])
    weighting.weights(_losses(layer, (1.0, 1.0)), context(True, True, shared=(layer,)))
    weighting.reset(2)
    weighting.initial_losses.copy_(torch.tensor([4.0, 1.0]))
    weighting.has_initial.fill_(True)
    weighting.weights(_losses(layer, (1.0, 1.0)), context(True, True, shared=(layer,)))  # L̃ = (0.25, 1)
    assert weighting.loss_weights[1] > weighting.loss_weights[0]


def test_absent_task_keeps_no_initial_loss_from_a_step_without_labels() -> None:
    layer = torch.eye(2, requires_grad=True)
    weighting = GradNorm()
    weighting.setup(["a", "b"])
    absent_b = torch.stack([3.0 * layer[0, 0] ** 2, torch.zeros(())])
    weighting.weights(absent_b, context(True, False, shared=(layer,)))
    assert weighting.has_initial.tolist() == [True, False]
    assert torch.equal(weighting.loss_weights, torch.ones(2))  # one present task: nothing to balance
    weighting.weights(_losses(layer), context(True, True, shared=(layer,)))
    assert weighting.initial_losses.tolist() == [3.0, 0.5]


def test_without_gradients_the_weights_do_not_move() -> None:
    weighting = GradNorm()
    weighting.setup(["a", "b"])
    assert torch.equal(weighting.weights(torch.tensor([1.0, 2.0]), context(True, True)), torch.ones(2))
    assert torch.equal(weighting.loss_weights, torch.ones(2))


def test_needs_the_shared_parameters() -> None:
    layer = torch.eye(2, requires_grad=True)
    weighting = GradNorm()
    weighting.setup(["a", "b"])
    with pytest.raises(ConfigError, match="GradNorm needs the model's shared parameters"):
        weighting.weights(_losses(layer), context(True, True))


def test_weights_are_not_trainer_parameters_but_are_in_the_state() -> None:
    weighting = GradNorm()
    weighting.setup(["a", "b"])
    assert list(weighting.parameters()) == []
    assert {"loss_weights", "initial_losses", "has_initial", "_extra_state"} <= set(weighting.state_dict())

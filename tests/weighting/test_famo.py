"""FAMO: weights from the logits, the logit update from the loss decrease, absent tasks."""

from __future__ import annotations

import math

import torch
from _helpers import context

from multitask.weighting import FAMO


def _step(weighting: FAMO, values: list[float], *present: bool) -> torch.Tensor:
    losses = torch.tensor(values, requires_grad=True)
    return weighting.weights(losses, context(*present))


def test_weights_at_uniform_logits() -> None:
    weighting = FAMO(eps=0.0 + 1e-12)
    weighting.setup(["a", "b"])
    # z = (½, ½), c = ½/1 + ½/3: w = z / (c L) = (0.75, 0.25)
    assert torch.allclose(_step(weighting, [1.0, 3.0], True, True), torch.tensor([0.75, 0.25]))


def test_task_whose_loss_falls_less_gains_weight() -> None:
    weighting = FAMO(lr=0.1, gamma=0.0)
    weighting.setup(["a", "b"])
    _step(weighting, [1.0, 1.0], True, True)
    _step(weighting, [0.5, 0.9], True, True)  # δ = (log 2, log 1/0.9): a fell more
    assert weighting.logits[1] > weighting.logits[0]
    z = torch.softmax(weighting.logits, 0)
    assert math.isclose(weighting.logits.sum().item(), 0.0, abs_tol=1e-6)  # Adam's first step: ±lr
    assert z[1] > 0.5


def test_absent_task_keeps_its_previous_loss_and_logit() -> None:
    weighting = FAMO(lr=0.1, gamma=0.0)
    weighting.setup(["a", "b", "c"])
    _step(weighting, [1.0, 2.0, 1.0], True, True, True)
    weights = _step(weighting, [0.5, 0.0, 0.9], True, False, True)
    assert weights[1] == 0 and abs(weights.sum().item() - 1) < 1e-6
    assert weighting.previous_losses[1].item() == 2.0  # not overwritten by the absent step's 0
    assert weighting.previous_present.tolist() == [True, False, True]


def test_logits_are_not_trainer_parameters() -> None:
    weighting = FAMO()
    weighting.setup(["a", "b"])
    assert list(weighting.parameters()) == []

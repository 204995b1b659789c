"""Every registered weighting: constructible by name and class, runs a Trainer epoch, one task, absent tasks, state."""

from __future__ import annotations

import io
import math

import pytest
import torch
from _helpers import KWARGS, NEEDS_NON_NEGATIVE, build, context

import multitask.weighting as weighting_module
from conftest import make_model, make_tasks, make_two_task_data
from multitask import Strategy, Trainer
from multitask.errors import InvalidLossError
from multitask.weighting import Weighting, names

NAMES = names()


def test_every_public_class_is_registered_and_every_name_is_public() -> None:
    classes = {getattr(weighting_module, name) for name in weighting_module.__all__}
    registered = {weighting_module.registry.get(name) for name in NAMES}
    assert registered == {c for c in classes if isinstance(c, type) and issubclass(c, Weighting) and c is not Weighting}
    assert len(NAMES) == 11


@pytest.mark.parametrize("name", NAMES)
def test_runs_one_trainer_epoch_and_logs_weights(name: str) -> None:
    tasks = make_tasks()
    strategy = Strategy(weighting_module.create(name, **KWARGS.get(name, {})))
    data = make_two_task_data(300)
    trainer = Trainer(make_model(tasks), tasks, strategy=strategy, max_epochs=2, batch_size=50, progress=False)
    history = trainer.fit(data)
    for record in history:
        assert math.isfinite(record["weight/cls"]) and math.isfinite(record["weight/reg"])
    assert history[-1]["train/reg/loss"] < history[0]["train/reg/loss"] * 1.5


@pytest.mark.parametrize("name", NAMES)
def test_one_task(name: str) -> None:
    weighting = build(name, ["only"])
    parameter = torch.tensor(2.0, requires_grad=True)
    losses = (parameter**2).reshape(1)
    value = weighting(losses, context(True, shared=(parameter.reshape(1, 1),)))
    assert torch.isfinite(value)
    value.backward()
    assert parameter.grad is not None and torch.isfinite(parameter.grad)


@pytest.mark.parametrize("name", NAMES)
def test_absent_task_gets_no_gradient_and_finite_weights(name: str) -> None:
    weighting = build(name)
    parameter = torch.tensor([[1.5, 2.0]], requires_grad=True)
    absent = context(True, False, shared=(parameter,))
    for _ in range(3):  # several steps so that stateful methods use their state
        losses = torch.stack([parameter[0, 0] ** 2, torch.zeros(())])  # task b absent: a constant 0
        weights = weighting.weights(losses, absent)
        assert torch.isfinite(weights).all()
        value = weights @ losses + weighting.penalty(absent)
        assert torch.isfinite(value)
    value.backward()
    assert parameter.grad is not None and parameter.grad[0, 1] == 0


@pytest.mark.parametrize("name", NAMES)
def test_state_survives_a_weights_only_round_trip(name: str) -> None:
    torch.manual_seed(0)
    original = build(name)
    parameter = torch.tensor([[1.0, 0.5], [0.2, 2.0]], requires_grad=True)

    def step(weighting: Weighting, epoch: int) -> torch.Tensor:
        losses = torch.stack([parameter[0].pow(2).sum(), parameter[1].pow(2).sum() * 3])
        return weighting.weights(losses, context(True, True, epoch=epoch, shared=(parameter,)))

    for epoch in range(3):
        step(original, epoch)
        original.on_epoch_end(epoch, torch.tensor([1.0 / (epoch + 1), 2.0 / (epoch + 2)]))
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    restored = build(name)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    torch.manual_seed(1)
    expected = [step(original, 3) for _ in range(2)]
    torch.manual_seed(1)
    actual = [step(restored, 3) for _ in range(2)]
    for left, right in zip(expected, actual, strict=True):
        assert torch.equal(left, right)


@pytest.mark.parametrize("name", NEEDS_NON_NEGATIVE)
def test_negative_loss_is_a_clear_error_naming_the_task(name: str) -> None:
    weighting = build(name, ["depth", "semantic"])
    with pytest.raises(InvalidLossError, match=r"task 'semantic' has loss -0\.5"):
        weighting.weights(torch.tensor([1.0, -0.5]), context(True, True))


@pytest.mark.parametrize("name", NEEDS_NON_NEGATIVE)
def test_non_finite_loss_is_a_clear_error_naming_the_task(name: str) -> None:
    weighting = build(name, ["depth", "semantic"])
    with pytest.raises(FloatingPointError, match="task 'depth' has a non-finite loss nan"):
        weighting.weights(torch.tensor([math.nan, 1.0]), context(True, True))


@pytest.mark.parametrize("name", NAMES)
def test_a_zero_loss_of_a_present_task_gives_finite_weights(name: str) -> None:
    weighting = build(name)
    parameter = torch.tensor(1.0, requires_grad=True)
    losses = torch.stack([parameter * 0.0, parameter**2])
    weights = weighting.weights(losses, context(True, True, shared=(parameter.reshape(1, 1),)))
    assert torch.isfinite(weights).all()

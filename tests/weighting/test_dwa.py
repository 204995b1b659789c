"""Dynamic weight average: softmax of epoch loss ratios with temperature, unit weights for two epochs."""

from __future__ import annotations

import math

import pytest
import torch
from _helpers import context

from multitask.errors import ConfigError
from multitask.weighting import DWA


def _weights(weighting: DWA) -> torch.Tensor:
    return weighting.weights(torch.tensor([1.0, 1.0, 1.0]), context(True, True, True))


def test_softmax_of_loss_ratios_with_temperature() -> None:
    weighting = DWA(temperature=2.0)
    weighting.setup(["a", "b", "c"])
    assert torch.equal(_weights(weighting), torch.ones(3))
    weighting.on_epoch_end(0, torch.tensor([1.0, 2.0, 4.0]))
    assert torch.equal(_weights(weighting), torch.ones(3))  # the first two epochs use unit weights
    weighting.on_epoch_end(1, torch.tensor([0.5, 1.8, 4.0]))
    ratios = [0.5, 0.9, 1.0]
    exps = [math.exp(r / 2.0) for r in ratios]
    expected = torch.tensor([3 * e / sum(exps) for e in exps])
    assert torch.allclose(_weights(weighting), expected)
    weighting.on_epoch_end(2, torch.tensor([0.25, 1.8, 2.0]))  # the ratios now use epochs 1 and 2
    exps = [math.exp(r / 2.0) for r in (0.5, 1.0, 0.5)]
    assert torch.allclose(_weights(weighting), torch.tensor([3 * e / sum(exps) for e in exps]))


def test_task_missing_for_an_epoch_keeps_its_previous_mean() -> None:
    weighting = DWA(temperature=1.0)
    weighting.setup(["a", "b"])
    weighting.on_epoch_end(0, torch.tensor([1.0, math.nan]))  # b never labelled in epoch 0
    weighting.on_epoch_end(1, torch.tensor([0.5, 2.0]))
    weights = weighting.weights(torch.ones(2), context(True, True))
    exps = [math.exp(0.5), math.exp(1.0)]  # b has one mean only: ratio 1
    assert torch.allclose(weights, torch.tensor([2 * e / sum(exps) for e in exps]))
    weighting.on_epoch_end(2, torch.tensor([0.25, math.nan]))  # b's mean carried over: ratio 2/2
    assert torch.isfinite(weighting.weights(torch.ones(2), context(True, True))).all()
    assert weighting.last_means[1, 1].item() == 2.0


def test_zero_previous_loss_keeps_weights_finite() -> None:
    weighting = DWA()
    weighting.setup(["a", "b"])
    weighting.on_epoch_end(0, torch.tensor([0.0, 1.0]))
    weighting.on_epoch_end(1, torch.tensor([0.0, 1.0]))
    assert torch.isfinite(weighting.weights(torch.ones(2), context(True, True))).all()


def test_the_trainer_drives_it_through_epoch_events() -> None:
    from conftest import make_model, make_tasks, make_two_task_data
    from multitask import Strategy, Trainer

    tasks = make_tasks()
    trainer = Trainer(make_model(tasks), tasks, strategy=Strategy(DWA()), max_epochs=4, batch_size=100, progress=False)
    history = trainer.fit(make_two_task_data(300))
    assert history[0]["weight/cls"] == history[1]["weight/cls"] == 1.0
    assert history[2]["weight/cls"] != 1.0
    assert history[2]["weight/cls"] + history[2]["weight/reg"] == pytest.approx(2.0)


def test_temperature_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="temperature must be > 0; got 0"):
        DWA(temperature=0)

"""Bad input to adversarial training gives one clear error, before any training step."""

from __future__ import annotations

import pytest
import torch
from _game import build, data
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.adversarial import Adversary, TaskDiscriminator
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, ShapeError
from multitask.models import HardSharing, MMoE


def _trainer(adversary: Adversary, model: nn.Module | None = None, tasks: list[Task] | None = None) -> Trainer:
    if model is None or tasks is None:
        model, tasks, _ = build()
    return Trainer(model, tasks, strategy=Strategy(adversary=adversary), max_epochs=1, progress=False, device="cpu")  # type: ignore[arg-type]


def test_single_input_data_is_refused_at_fit() -> None:
    trainer = _trainer(Adversary())
    single = ArrayDataset(x=torch.randn(6, 3), a=torch.randn(6), b=torch.randn(6))
    with pytest.raises(ConfigError, match=r"needs multi-input data, \{task: dataset\}"):
        trainer.fit(single)
    assert trainer.global_step == 0


def test_a_model_without_shared_features_is_refused_at_construction() -> None:
    torch.manual_seed(0)
    tasks = [Task(name, nn.Linear(4, 1), "regression") for name in ("a", "b")]
    experts = [nn.Sequential(nn.Linear(3, 4), nn.ReLU()) for _ in range(2)]
    with pytest.raises(ConfigError, match="MMoE does not expose them"):
        _trainer(Adversary(), MMoE(experts, tasks, in_features=3), tasks)


def test_one_task_is_refused() -> None:
    torch.manual_seed(0)
    _, tasks, _ = build()
    single = HardSharing(nn.Linear(3, 4), tasks[:1])
    with pytest.raises(ConfigError, match="at least two tasks"):
        _trainer(Adversary(), single, tasks[:1])
    with pytest.raises(ConfigError, match="at least two tasks"):
        TaskDiscriminator(4, num_tasks=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": -1.0}, "≥ 0"),
        ({"weight": -0.5}, "weight must be a finite number ≥ 0"),
        ({"scheme": "gan"}, "scheme must be one of reversal, alternating"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"optimizer": torch.optim.SGD}, "scheme='alternating' only"),
        ({"schedule": "dann"}, "schedule must be a Schedule or a number"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Adversary(**kwargs)  # type: ignore[arg-type]


def test_a_discriminator_with_the_wrong_output_is_a_shape_error() -> None:
    trainer = _trainer(Adversary(nn.Linear(4, 3)))  # 3 logits for 2 tasks
    with pytest.raises(ShapeError, match=r"logits \[N, T\] = \[10, 2\]; got \(10, 3\)"):
        trainer.fit(data())


def test_strategy_refuses_a_non_adversary() -> None:
    with pytest.raises(ConfigError, match=r"adversary must be a multitask\.adversarial\.Adversary"):
        Strategy(adversary=nn.Linear(2, 2))  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", ["reversal", "alternating"])
def test_mixed_precision_and_gradient_clipping_work_with_the_adversary(scheme: str) -> None:
    model, tasks, _ = build()
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(adversary=Adversary(scheme=scheme)),  # type: ignore[arg-type]
        max_epochs=2,
        batch_size=5,
        mixed_precision=True,
        grad_clip=1.0,
        progress=False,
        device="cpu",
    )
    history = trainer.fit(data())
    assert all(0.0 <= record["adversary/accuracy"] <= 1.0 for record in history)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())

"""`TrainerOptions`: exactly the Trainer's keyword arguments, a strategy factory per Trainer, the same training."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import torch

import multitask
from conftest import make_model, make_tasks, make_two_task_data
from multitask import Strategy, Task, Trainer
from multitask.errors import ConfigError
from multitask.models import MultiTaskModel
from multitask.training import TrainerOptions, TrainerView
from multitask.weighting import DWA


def _keyword_parameters() -> dict[str, inspect.Parameter]:
    parameters = inspect.signature(Trainer.__init__).parameters.values()
    return {p.name: p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_the_fields_are_the_trainers_keyword_arguments_with_their_defaults_and_types() -> None:
    positional = [
        p.name for p in inspect.signature(Trainer.__init__).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    assert positional == ["self", "model", "tasks"]
    keywords = _keyword_parameters()
    fields = {field.name: field for field in dataclasses.fields(TrainerOptions)}
    assert list(fields) == list(keywords)
    assert {name: field.default for name, field in fields.items()} == {name: p.default for name, p in keywords.items()}
    option_types = typing.get_type_hints(TrainerOptions)
    trainer_types = typing.get_type_hints(Trainer.__init__)
    assert {name: option_types[name] for name in fields} == {name: trainer_types[name] for name in keywords}
    assert multitask.TrainerOptions is TrainerOptions


def test_replace_changes_the_named_options_and_refuses_unknown_ones() -> None:
    options = TrainerOptions(max_epochs=5, lr=3e-3)
    changed = options.replace(max_epochs=20, seed=7)
    assert (changed.max_epochs, changed.seed, changed.lr) == (20, 7, 3e-3)
    assert (options.max_epochs, options.seed) == (5, 0)  # frozen: a new value
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.lr = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"unknown Trainer option\(s\) \['epochs'\].*max_epochs"):
        options.replace(epochs=3)


def _build(make: Callable[[MultiTaskModel, Sequence[Task]], Trainer]) -> Trainer:
    tasks = make_tasks()
    return make(make_model(tasks), tasks)


def test_a_strategy_factory_gives_every_trainer_its_own_strategy_and_an_instance_is_shared() -> None:
    options = TrainerOptions(strategy=lambda: Strategy(weighting=DWA()), progress=False)
    first, second = _build(options.trainer), _build(options.trainer)
    assert isinstance(first.strategy.weighting, DWA) and isinstance(second.strategy.weighting, DWA)
    assert first.strategy is not second.strategy
    shared = Strategy()
    options = options.replace(strategy=shared)
    assert _build(options.trainer).strategy is shared and _build(options.trainer).strategy is shared


def test_a_strategy_that_is_not_one_or_a_factory_of_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="must return a Strategy; it returned DWA"):
        _build(TrainerOptions(strategy=DWA, progress=False).trainer)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="strategy must be a Strategy or a function"):
        _build(lambda model, tasks: Trainer(model, tasks, strategy="dwa", progress=False))  # type: ignore[arg-type]


def test_options_train_bit_identically_to_the_same_keywords() -> None:
    data = make_two_task_data(240)
    keywords: dict[str, Any] = {
        "strategy": lambda: Strategy(weighting=DWA()),  # stateful: each trainer needs its own
        "max_epochs": 3,
        "batch_size": 48,
        "lr": 3e-3,
        "grad_clip": 1.0,
        "seed": 3,
        "progress": False,
    }

    def weights(trainer: Trainer) -> list[torch.Tensor]:
        trainer.fit(data)
        return [p.detach().clone() for p in trainer.model.parameters()]

    direct = weights(_build(lambda model, tasks: Trainer(model, tasks, **keywords)))
    built = weights(_build(TrainerOptions(**keywords).trainer))
    assert len(direct) == len(built)
    assert all(torch.equal(a, b) for a, b in zip(direct, built, strict=True))


def test_the_trainer_offers_what_callbacks_read() -> None:
    trainer = _build(TrainerOptions(progress=False).trainer)
    assert isinstance(trainer, TrainerView)  # every member of the protocol is there

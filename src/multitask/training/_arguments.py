"""The Trainer's arguments, checked at the boundary before any work: sizes, choices, a strategy that fits."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from multitask.errors import ConfigError
from multitask.models import MultiTaskModel
from multitask.strategy import Strategy
from multitask.tasks import Task
from multitask.training.distributed import Distributed

#: ``() -> Strategy``: a fresh strategy for each Trainer (stateful weightings are then never shared).
StrategyFactory = Callable[[], Strategy]


def check_arguments(
    model: object,
    tasks: Sequence[Task],
    *,
    max_epochs: int,
    eval_batch_size: int,
    batch_size: int | Mapping[str, int],
    patience: int | None,
    grad_clip: float | None,
    checkpoint_every: int | None,
    lr: float,
    on_nonfinite: str,
    scheduler_interval: str,
) -> None:
    """The model and its tasks, the sizes and the choices of `Trainer`'s arguments.

    Raises:
        ConfigError: What is wrong and what is accepted.
    """
    if not isinstance(model, MultiTaskModel):
        raise ConfigError(f"model must be a multitask MultiTaskModel (e.g. HardSharing); got {type(model).__name__}")
    if [t.name for t in tasks] != list(model.task_names):
        raise ConfigError(f"tasks {[t.name for t in tasks]} do not match the model's {list(model.task_names)}")
    check_positive(max_epochs=max_epochs, eval_batch_size=eval_batch_size)
    for size in batch_size.values() if isinstance(batch_size, Mapping) else [batch_size]:
        check_positive(batch_size=size)
    check_positive(patience=patience, grad_clip=grad_clip, checkpoint_every=checkpoint_every, lr=lr)
    if on_nonfinite not in ("raise", "skip"):
        raise ConfigError(f"on_nonfinite must be 'raise' or 'skip'; got {on_nonfinite!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ConfigError(f"scheduler_interval must be 'epoch' or 'step'; got {scheduler_interval!r}")


def check_positive(**values: float | None) -> None:
    """Each value that is not None is above zero."""
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive; got {value}")


def make_strategy(strategy: Strategy | StrategyFactory | None) -> Strategy:
    """The Trainer's strategy: ``strategy`` itself, a new one from a factory, or equal weighting (None).

    Raises:
        ConfigError: ``strategy`` is neither a `Strategy` nor a callable that returns one.
    """
    if strategy is None:
        return Strategy()
    if isinstance(strategy, Strategy):  # before callable(): a Strategy, an nn.Module, is callable too
        return strategy
    if not callable(strategy):
        raise ConfigError(
            f"strategy must be a Strategy or a function that returns a new one; got {type(strategy).__name__}"
        )
    made = strategy()
    if not isinstance(made, Strategy):
        name = getattr(strategy, "__qualname__", type(strategy).__name__)
        raise ConfigError(f"the strategy factory {name} must return a Strategy; it returned {type(made).__name__}")
    return made


def check_strategy(strategy: Strategy, model: MultiTaskModel, distributed: Distributed | None) -> None:
    """A strategy the model can take: a known shared representation, features for an adversary.

    Raises:
        ConfigError: The strategy needs what the model (or a multi-process run) does not offer.
    """
    if strategy.on == "representation" and not model.has_shared_representation:
        raise ConfigError(
            f"aggregation on='representation' needs a model whose shared representation is known "
            f"(HardSharing's encoder output); {type(model).__name__} has none: aggregate on='parameters'"
        )
    if strategy.adversary is not None and distributed is not None and distributed.world_size > 1:
        raise ConfigError(
            "adversarial training does not run on several processes yet (each process's discriminator would "
            "see only its shard); train it in one process"
        )
    if strategy.adversary is not None and type(model).shared_features is MultiTaskModel.shared_features:
        raise ConfigError(
            f"the adversary plays on the model's shared features, and {type(model).__name__} does not expose "
            "them (MultiTaskModel.shared_features): use HardSharing or SharedPrivate"
        )


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def unique(parameters: list[nn.Parameter]) -> list[nn.Parameter]:
    """``parameters`` without repeats, in order (a parameter may be both the model's and the strategy's)."""
    seen: set[int] = set()
    return [p for p in parameters if not (id(p) in seen or seen.add(id(p)))]  # type: ignore[func-returns-value]

"""The contract every sharing scheme meets: a batch in, one output per requested task out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.types import Batch as Batch  # re-exported: the sharing schemes import it from here

T = TypeVar("T")


class Transient(Generic[T]):
    """A value kept from one forward pass to the next call (e.g. features with their autograd graph).

    Copies and pickles start empty: ``copy.deepcopy(model)`` after a training step would otherwise
    fail on a tensor that is not a graph leaf.
    """

    __slots__ = ("value",)

    def __init__(self, value: T | None = None) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> Transient[T]:
        return Transient()

    def __reduce__(self) -> tuple[type[Transient[T]], tuple[()]]:
        return (Transient, ())


class MultiTaskModel(nn.Module, ABC):
    """A model with one output per task and a known split of its parameters into shared and task-specific.

    Subclasses implement `forward` and `shared_parameters`; the Trainer, the baselines and the
    gradient-based strategies rely only on this interface.
    """

    task_names: tuple[str, ...]
    #: True when every path from `shared_parameters` to a task's output goes through `shared_features`
    #: (a shared encoder's output): `multitask.backward` then computes per-task gradients features-first,
    #: and aggregation ``on="representation"`` is possible. Declared by the model class (HardSharing,
    #: SharedPrivate), never probed.
    has_shared_representation: ClassVar[bool] = False
    #: The inputs the architecture can read: ``"features"`` (a feature vector per row), ``"tokens"`` (token
    #: ids, through a bag-of-embeddings encoder), ``"images"`` (through a convolutional encoder). Mixtures of
    #: experts, cross-stitch and DSelect-k are MLPs over a feature vector; MTAN reads images only.
    reads: ClassVar[frozenset[str]] = frozenset({"features"})
    #: The keyword arguments of the class's ``from_parts(parts, tasks, **hyperparameters)`` (the constructor
    #: from `multitask.models.ModelParts` that `multitask.models.create` calls): what a config sets.
    hyperparameters: ClassVar[tuple[str, ...]] = ()
    #: The `multitask.models.ModelParts` besides the encoder that ``from_parts`` uses.
    parts_used: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: head output}`` for ``tasks`` (all tasks when None)."""

    @abstractmethod
    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters used by more than one task (those gradient aggregation acts on)."""

    def regularization(self) -> Tensor:
        """The model's own penalty on its parameters, added to the training objective (zero by default).

        Soft sharing returns its coupling term here (e.g. ``λ Σ_t ‖b_t‖²``); the Trainer adds it to the
        strategy's objective at every step.
        """
        parameter = next(self.parameters(), None)
        return torch.zeros((), device=parameter.device if parameter is not None else None)

    def shared_features(self) -> Tensor | None:
        """The shared features ``[N, d]`` of the last forward pass, or None for models without them (the default).

        Models whose tasks read one shared representation return it here (`HardSharing`: the
        encoder's output; `SharedPrivate`: the shared encoder's output), with its autograd graph
        when the forward pass had one. Adversarial training (`multitask.adversarial.Adversary`)
        plays its task discriminator on these features.
        """
        return None

    def last_gates(self) -> dict[str, Tensor]:
        """Gate weights of the last forward pass, ``{name: [N, num_experts]}``; empty for models without gates.

        Mixture-of-experts models return which experts each task (and, for PLE, each level) used;
        the Trainer logs their epoch means as ``gate/NAME/EXPERT``.
        """
        return {}

    def task_specific_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter that is not shared."""
        shared = {id(p) for p in self.shared_parameters()}
        return (p for p in self.parameters() if id(p) not in shared)

    def _check_tasks(self, tasks: Sequence[str] | None) -> Sequence[str]:
        if tasks is None:
            return self.task_names
        unknown = [name for name in tasks if name not in self.task_names]
        if unknown:
            raise ConfigError(f"unknown task(s) {unknown}; this model has {list(self.task_names)}")
        return tasks

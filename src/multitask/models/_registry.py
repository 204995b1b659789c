"""Architectures by name, as timm's ``create_model``: every sharing scheme built from the same parts.

A model class declares what it needs next to its code: which inputs it can read (`MultiTaskModel.reads`),
the hyper-parameters it takes (``hyperparameters``), the parts besides the encoder it is made of
(``parts_used``: ``"expert"``, ``"private"``, ``"head"``) and whether it has a shared representation
(`MultiTaskModel.has_shared_representation`), and builds itself from `ModelParts` (``from_parts``).
Configs, the benchmark grid and the tests ask `names`, `info` and `create` instead of keeping lists.
Each model module registers its classes when it is imported (importing any part of ``multitask.models``
imports them all first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from multitask.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from multitask.models._base import MultiTaskModel
    from multitask.tasks import Task

ModelFactory = Callable[[Sequence["Task"]], "MultiTaskModel"]
"""Builds a multi-task model from (fresh) tasks: how studies and configs pass an architecture that is not built yet
(each run calls it under its seed, so the model's own layers start the same in every run)."""


@dataclass(frozen=True)
class ModelParts:
    """The building blocks an architecture is assembled from (each callable returns a fresh module).

    Attributes:
        encoder: The shared encoder: hard sharing's trunk, each cross-stitch column (an `MLP`), the network
            soft sharing and coupled networks copy per task, MTAN's convolutional stages (a `ConvNet`),
            shared-private's shared encoder.
        in_features: The width of one input row, which the experts and gates of the mixture-of-experts
            models read (for images: their channels).
        expert: ``in_features -> module``: one expert (MMoE, OMoE, CGC, PLE, DSelect-k).
        private: A task's private encoder (shared-private; default: another `encoder`).
        head: ``(task, width) -> module``: the task's head rebuilt to read ``width`` features
            (shared-private's heads read ``[shared; private]``; MTAN's read a task's attended map).
        in_shape: One input row's shape (MTAN sizes its attention modules from it).
        input_key: The batch column(s) the model reads (several: the encoder's positional inputs, e.g. a
            transformer's ``("input_ids", "attention_mask")``; only architectures whose encoder reads the
            batch take several, see `column`).
    """

    encoder: Callable[[], nn.Module]
    in_features: int
    expert: Callable[[int], nn.Module] | None = None
    private: Callable[[], nn.Module] | None = None
    head: Callable[[Task, int], nn.Module] | None = None
    in_shape: tuple[int, ...] | None = None
    input_key: str | tuple[str, ...] = "x"

    def column(self, architecture: str) -> str:
        """The one batch column ``architecture`` reads (experts, gates and columns read one input tensor).

        Raises:
            ConfigError: ``input_key`` names several columns.
        """
        if not isinstance(self.input_key, str):
            raise ConfigError(
                f"{architecture} reads one input column; got {list(self.input_key)} (use hard_sharing, "
                "shared_private or task_lora with an encoder that reads several)"
            )
        return self.input_key

    def need(self, part: str, architecture: str) -> Any:
        """The part ``part``, or a `ConfigError` saying that ``architecture`` needs it."""
        value = getattr(self, part)
        if value is None:
            raise ConfigError(f"{architecture} needs ModelParts.{part}")
        return value


@dataclass(frozen=True)
class ModelInfo:
    """What a registered architecture is and needs (`info`)."""

    name: str
    cls: type[MultiTaskModel]
    hyperparameters: tuple[str, ...]
    parts_used: frozenset[str]
    reads: frozenset[str]
    has_shared_representation: bool
    build: Callable[..., MultiTaskModel]
    fixed: Mapping[str, Any] = field(default_factory=dict)


_REGISTERED: dict[str, ModelInfo] = {}


def register(
    name: str, cls: type[MultiTaskModel], *, hyperparameters: Sequence[str] | None = None, **fixed: Any
) -> None:
    """Register ``cls`` as the architecture ``name``; ``fixed`` keywords make a variant (OMoE: MMoE with one gate).

    ``hyperparameters`` defaults to the class's, less the fixed ones.
    """
    if name in _REGISTERED:
        raise ValueError(f"architecture {name!r} is registered twice")
    names = tuple(cls.hyperparameters if hyperparameters is None else hyperparameters)
    build = getattr(cls, "from_parts", None)
    if build is None:
        raise TypeError(f"{cls.__name__} has no from_parts(parts, tasks, **hyperparameters) classmethod")
    _REGISTERED[name] = ModelInfo(
        build=build,
        name=name,
        cls=cls,
        hyperparameters=tuple(h for h in names if h not in fixed),
        parts_used=frozenset(cls.parts_used),
        reads=frozenset(cls.reads),
        has_shared_representation=cls.has_shared_representation,
        fixed=dict(fixed),
    )


def names() -> list[str]:
    """The registered architectures, sorted."""
    return sorted(_REGISTERED)


def info(name: str) -> ModelInfo:
    """What the architecture ``name`` is and needs; `UnknownNameError` lists the names."""
    if name not in _REGISTERED:
        raise UnknownNameError(f"unknown architecture {name!r}; allowed: {', '.join(names())}")
    return _REGISTERED[name]


def create(name: str, tasks: Sequence[Task], parts: ModelParts, **hyperparameters: Any) -> MultiTaskModel:
    """The architecture ``name`` for ``tasks``, built from ``parts`` with ``hyperparameters`` (see `info`).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from multitask import Task
        >>> from multitask.models import MLP, ModelParts, create
        >>> tasks = [Task("a", nn.Linear(8, 1), "regression"), Task("b", nn.Linear(8, 1), "regression")]
        >>> parts = ModelParts(encoder=lambda: MLP(4, [8]), in_features=4, expert=lambda n: MLP(n, [8]))
        >>> model = create("mmoe", tasks, parts, num_experts=3)
        >>> sorted(model({"x": torch.randn(2, 4)}))
        ['a', 'b']
    """
    entry = info(name)
    unknown = sorted(set(hyperparameters) - set(entry.hyperparameters))
    if unknown:
        allowed = ", ".join(entry.hyperparameters) or "none"
        raise ConfigError(f"architecture {name!r} takes no {', '.join(unknown)} (its hyper-parameters: {allowed})")
    return entry.build(parts, tasks, **entry.fixed, **hyperparameters)
